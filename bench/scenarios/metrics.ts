/** Reads a tubecache process's /metrics (Prometheus text) into `name{labels}` → value. */
export async function scrape(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (match) values.set(match[1]!, Number(match[2]));
  }
  return values;
}

export type Tier = 'memory' | 's3' | 'origin';

/** The sum of the series whose text starts with `prefix` (`name` alone: every label value; `name{tier="s3"`: the other labels summed). */
export function sum(metrics: Map<string, number>, prefix: string): number {
  let total = 0;
  for (const [series, value] of metrics) if (series === prefix || series.startsWith(prefix.includes('{') ? prefix : `${prefix}{`)) total += value;
  return total;
}

/** Bytes served per tier between two scrapes (summed over formats). */
export function servedByTier(before: Map<string, number>, after: Map<string, number>): Record<Tier, number> {
  const delta = (tier: string) => {
    const prefix = `tubecache_served_bytes_total{tier="${tier}"`;
    return sum(after, prefix) - sum(before, prefix);
  };
  // `s3` is the persistent tier, whichever store it is (disk without S3_ENDPOINT).
  return { memory: delta('memory'), s3: delta('s3') + delta('disk'), origin: delta('origin') };
}
