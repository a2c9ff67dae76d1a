import type { System } from '../systems/process.js';
import { probe } from '../probe.js';
import { sha256, videoBytes } from '../videos.js';

const WARM_PARALLEL = 4;

/** Reads every video once, whole, checking its bytes. */
export async function warm(system: System, ids: string[]): Promise<void> {
  const expected = sha256(videoBytes('short'));
  let next = 0;
  await Promise.all(
    Array.from({ length: WARM_PARALLEL }, async () => {
      while (next < ids.length) {
        const id = ids[next++]!;
        const reply = await probe(`${system.url}/proxy/${id}`, { hash: true });
        if (reply.sha256 !== expected) throw new Error(`${system.url}: wrong bytes for ${id}`);
      }
    }),
  );
}
