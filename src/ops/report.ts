import { formatBytes, formatDuration } from '../units.js';
import type { Check } from './doctor.js';
import type { VideoDetail, VideoInfo } from './inspect.js';
import type { PruneSummary } from './prune.js';

/** Plain-text renderings of the ops results for a terminal; `--json` prints the objects themselves. */

function table(header: string[], rows: string[][], rightAligned: ReadonlySet<number> = new Set()): string {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (rightAligned.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

const ago = (iso: string, now: number) => `${formatDuration(Math.max(0, now - Date.parse(iso)))} ago`;
const minute = (iso: string | null) => (iso ? `${iso.slice(0, 16).replace('T', ' ')}Z` : '-');

export function videoTable(videos: readonly VideoInfo[], now = Date.now()): string {
  if (videos.length === 0) return 'no cached videos';
  const rows = videos.map((video) => [
    video.id,
    video.format,
    video.size === null ? (video.manifest === 'missing' ? '(no manifest)' : '(unreadable)') : formatBytes(video.size),
    formatBytes(video.persistedBytes),
    video.totalSlices === null ? String(video.persistedSlices) : `${video.persistedSlices}/${video.totalSlices}`,
    video.headSeconds === null ? '-' : `${video.headSeconds}s`,
    minute(video.createdAt),
    ago(video.lastAccess, now),
  ]);
  const bytes = videos.reduce((n, video) => n + video.bytes, 0);
  return `${table(['ID', 'FORMAT', 'SIZE', 'STORED', 'SLICES', 'HEAD', 'CREATED', 'LAST ACCESS'], rows, new Set([2, 3, 4, 5]))}\n${videos.length} video${videos.length === 1 ? '' : 's'}, ${formatBytes(bytes)} stored`;
}

export function pruneReport(summary: PruneSummary): string {
  const { scanned, deleted, kept } = summary;
  const verb = summary.dryRun ? 'would delete' : 'deleted';
  const lines: string[] = [];
  if (summary.dryRun) {
    for (const video of summary.videos) lines.push(`${verb} ${video.id}/${video.format}  ${video.reason}  last access ${video.lastAccess}  ${formatBytes(video.bytes)}`);
  }
  const budget = summary.maxBytes > 0 ? `, max ${formatBytes(summary.maxBytes)}` : '';
  lines.push(
    `prune${summary.dryRun ? ' (dry run)' : ''}: ttl ${formatDuration(summary.ttlMs)}${budget}`,
    table(
      ['', 'VIDEOS', 'OBJECTS', 'BYTES'],
      [
        ['scanned', String(scanned.videos), String(scanned.objects), formatBytes(scanned.bytes)],
        [verb, String(deleted.videos), String(deleted.objects), formatBytes(deleted.bytes)],
        ['kept', String(kept.videos), String(kept.objects), formatBytes(kept.bytes)],
      ],
      new Set([1, 2, 3]),
    ),
    `${deleted.expired} past the TTL, ${deleted.overBudget} over the size budget, ${deleted.orphans} orphans (objects without a manifest), ${deleted.shared} shared slices and leases past SHARED_TTL; ${formatDuration(summary.ms)}`,
  );
  if (summary.failures.length) {
    lines.push(`${summary.failures.length} objects could not be deleted:`);
    for (const failure of summary.failures) lines.push(`  ${failure.key}: ${failure.message}`);
  }
  return lines.join('\n');
}

const ACCESS_FROM: Record<VideoInfo['lastAccessFrom'], string> = {
  access: "the access object's LastModified (the last recorded read)",
  manifest: "no access object: the manifest's LastModified",
  objects: "no manifest: the newest object's LastModified",
};

export interface MemoryView {
  format: string;
  slices: number[];
}

export function videoReport(id: string, stored: readonly VideoDetail[], memory?: MemoryView | null, now = Date.now()): string {
  if (stored.length === 0 && !memory) return `${id} is not cached`;
  const lines: string[] = [];
  for (const video of stored) {
    lines.push(`${video.id}/${video.format}  (store)`);
    const m = video.manifestBody;
    if (m) {
      lines.push(
        `  size         ${formatBytes(m.size)} (${m.size} bytes), ${m.contentType}${m.duration ? `, ${m.duration}s` : ''}`,
        `  etag         ${m.etag}${m.lmt ? `  lmt ${m.lmt}` : ''}`,
        `  slices       ${video.totalSlices} of ${formatBytes(m.sliceBytes)}; head ${m.head ? `${m.head.slices.length} (${m.head.method})` : m.headSlices}; manifest lists ${m.persisted.length} stored`,
        `  created      ${m.createdAt}`,
      );
    } else {
      lines.push(`  manifest     ${video.manifest}`);
    }
    lines.push(
      `  last access  ${video.lastAccess} (${ago(video.lastAccess, now)}; ${ACCESS_FROM[video.lastAccessFrom]})`,
      `  stored       ${video.persistedSlices} slices, ${formatBytes(video.persistedBytes)}; ${video.objects} objects, ${formatBytes(video.bytes)}${video.headSeconds !== null ? `; plays ${video.headSeconds}s without the origin` : ''}`,
      `  slices held  ${ranges(video.slices.map((slice) => slice.index))}`,
    );
    if (video.missingSlices.length) lines.push(`  missing      ${ranges(video.missingSlices)} (in the manifest, not stored: read from the origin)`);
    if (video.unlistedSlices.length) lines.push(`  unlisted     ${ranges(video.unlistedSlices)} (stored, not yet in the manifest)`);
  }
  if (memory !== undefined) {
    lines.push(memory ? `${id}/${memory.format}  (memory of the service)\n  slices       ${ranges(memory.slices)}` : `${id}  not in the service's memory`);
  }
  return lines.join('\n');
}

/** 0,1,2,3,7,9,10 → "0-3, 7, 9-10". */
function ranges(indexes: readonly number[]): string {
  if (indexes.length === 0) return 'none';
  const sorted = [...indexes].sort((a, b) => a - b);
  const parts: string[] = [];
  let start = sorted[0]!;
  let previous = start;
  for (const index of [...sorted.slice(1), Infinity]) {
    if (index === previous + 1) {
      previous = index;
      continue;
    }
    parts.push(start === previous ? String(start) : `${start}-${previous}`);
    start = previous = index;
  }
  return parts.join(', ');
}

const MARK = { ok: '✓', warn: '!', fail: '✗' } as const;

export function checksReport(checks: readonly Check[]): string {
  const width = Math.max(...checks.map((check) => check.name.length));
  return checks
    .map((check) => `${MARK[check.status]} ${check.name.padEnd(width)}  ${check.detail}${check.fix && check.status !== 'ok' ? `\n  ${' '.repeat(width)}  fix: ${check.fix}` : ''}`)
    .join('\n');
}
