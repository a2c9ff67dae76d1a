/**
 * Frees a Buffer's memory now, by detaching its ArrayBuffer, instead of at V8's
 * next full collection: a Buffer that lived a while (a slice, a chunk that
 * waited for a slow reader) sits in the old generation, and hundreds of MB of
 * them a minute would otherwise pile up between collections, uncounted by the
 * slice budget. Only a Buffer that is its ArrayBuffer's one view (how node:http
 * hands over body bytes; how a slice is allocated), so no other bytes go with
 * it. The caller must be the last user: every view of it reads as empty after.
 */
export function freeNow(buffer: Buffer): void {
  const memory = buffer.buffer;
  if (memory instanceof ArrayBuffer && !memory.detached && buffer.byteOffset === 0 && memory.byteLength === buffer.length) memory.transfer(0);
}
