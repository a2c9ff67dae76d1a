const WIDTH = 24;
/** Redraws at most this often: a bar must not cost more than the work it shows. */
const REDRAW_MS = 100;

export interface Progress {
  update(label: string, done: number, total?: number): void;
  /** Clears the bar, leaving the terminal line empty for the summary. */
  end(): void;
}

/** A one-line progress bar on `stream` when it is a terminal; nothing at all when it is a pipe or a file (cron logs). */
export function progressBar(stream: NodeJS.WriteStream): Progress {
  if (!stream.isTTY) return { update() {}, end() {} };
  let drawn = 0;
  let visible = false;
  return {
    update(label, done, total) {
      const now = Date.now();
      if (now - drawn < REDRAW_MS && done !== total) return;
      drawn = now;
      visible = true;
      const line =
        total && total > 0
          ? `[${'#'.repeat(Math.round((done / total) * WIDTH)).padEnd(WIDTH, '.')}] ${Math.floor((done / total) * 100)}% ${label} ${done}/${total}`
          : `${label} ${done}…`;
      stream.write(`\r\x1b[2K${line.slice(0, (stream.columns || 80) - 1)}`);
    },
    end() {
      if (visible) stream.write('\r\x1b[2K');
      visible = false;
    },
  };
}
