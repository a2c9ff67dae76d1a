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

/** Bytes served per tier between two scrapes. */
export function servedByTier(before: Map<string, number>, after: Map<string, number>): Record<Tier, number> {
  const delta = (tier: string) => {
    const key = `tubecache_served_bytes_total{tier="${tier}"}`;
    return (after.get(key) ?? 0) - (before.get(key) ?? 0);
  };
  // `s3` is the persistent tier, whichever store it is (disk without S3_ENDPOINT).
  return { memory: delta('memory'), s3: delta('s3') + delta('disk'), origin: delta('origin') };
}
