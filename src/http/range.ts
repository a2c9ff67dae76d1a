/** The one Range parser: what a `Range` header asks of a body of `size` bytes. */
export type RangeRequest = { kind: 'whole' } | { kind: 'partial'; start: number; end: number } | { kind: 'unsatisfiable' };

const WHOLE: RangeRequest = { kind: 'whole' };
const UNSATISFIABLE: RangeRequest = { kind: 'unsatisfiable' };

/**
 * One range (`a-b`, `a-`, `-n`) → partial. Several ranges → the whole body
 * (never multipart: players ask one range at a time). Another unit → whole
 * (RFC 9110 lets a server ignore it). A malformed range, or one starting at or
 * past the end → 416. Per RFC 9110 §14.1.2 a last-byte-pos past the end (of any
 * size, even beyond 2^53) means the last byte, and a suffix longer than the
 * body means all of it: numbers are compared, never required to be exact.
 */
export function parseRange(header: string | undefined, size: number): RangeRequest {
  if (!header) return WHOLE;
  const match = /^\s*bytes\s*=\s*(.*)$/i.exec(header);
  if (!match) return WHOLE;
  const specs = match[1]!.split(',').filter((spec) => spec.trim() !== '');
  if (specs.length > 1) return WHOLE;
  const spec = /^\s*(\d*)\s*-\s*(\d*)\s*$/.exec(specs[0] ?? '');
  if (!spec || (spec[1] === '' && spec[2] === '')) return UNSATISFIABLE;
  const first = spec[1] === '' ? undefined : Number(spec[1]);
  const last = spec[2] === '' ? undefined : Number(spec[2]);
  if (first === undefined) {
    // Suffix: the last n bytes.
    return last! > 0 && size > 0 ? { kind: 'partial', start: Math.max(0, size - last!), end: size - 1 } : UNSATISFIABLE;
  }
  if (first >= size || (last !== undefined && last < first)) return UNSATISFIABLE;
  return { kind: 'partial', start: first, end: Math.min(last ?? size - 1, size - 1) };
}

/**
 * Where a read with this Range header starts, when that is known before the
 * body's size (a suffix range's is not): a hint for fetching ahead, never an
 * answer.
 */
export function startBeforeSize(header: string | undefined): number | undefined {
  if (/^\s*bytes\s*=\s*-/i.test(header ?? '')) return undefined;
  const asked = parseRange(header, Number.MAX_SAFE_INTEGER);
  return asked.kind === 'whole' ? 0 : asked.kind === 'partial' ? asked.start : undefined;
}
