/**
 * The duration in seconds from an MP4's movie header (moov/mvhd), when the
 * moov box lies within `head` (faststart files, which YouTube serves). Used
 * when yt-dlp reports no duration, to know how many bytes N seconds take.
 */
export function mp4Duration(head: Buffer): number | undefined {
  const moov = findBox(head, 0, head.length, 'moov');
  if (!moov) return undefined;
  const mvhd = findBox(head, moov.body, moov.end, 'mvhd');
  const version = mvhd ? head[mvhd.body] : undefined;
  if (!mvhd || mvhd.end - mvhd.body < (version === 1 ? 32 : 20)) return undefined;
  const timescale = version === 1 ? head.readUInt32BE(mvhd.body + 20) : head.readUInt32BE(mvhd.body + 12);
  const duration = version === 1 ? Number(head.readBigUInt64BE(mvhd.body + 24)) : head.readUInt32BE(mvhd.body + 16);
  return timescale > 0 && duration > 0 ? duration / timescale : undefined;
}

function findBox(buffer: Buffer, start: number, end: number, type: string): { body: number; end: number } | undefined {
  let position = start;
  while (position + 8 <= end) {
    let size = buffer.readUInt32BE(position);
    let header = 8;
    if (size === 1) {
      if (position + 16 > end) return undefined;
      size = Number(buffer.readBigUInt64BE(position + 8));
      header = 16;
    } else if (size === 0) {
      size = end - position;
    }
    if (size < header) return undefined;
    if (buffer.toString('latin1', position + 4, position + 8) === type) {
      return position + size <= end ? { body: position + header, end: position + size } : undefined;
    }
    position += size;
  }
  return undefined;
}
