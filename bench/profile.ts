/**
 * `node --import tsx bench/profile.ts FILE.cpuprofile [N]`: the top N functions
 * of a V8 CPU profile (node --cpu-prof, BENCH_CPU_PROFILE=1) by self time, and
 * the self time per file, as a markdown table for bench/results. Shares are
 * of the busy time (idle left out): where the CPU the process used went.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, top = '25'] = process.argv.slice(2);
if (!file) throw new Error('usage: bench/profile.ts FILE.cpuprofile [N]');
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
// Self time per node: each sample's delta goes to the node it landed in.
const self = new Map<number, number>();
profile.samples.forEach((id, index) => {
  self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0));
});
const idleId = profile.nodes.find((node) => node.callFrame.functionName === '(idle)')?.id;
const idle = self.get(idleId ?? -1) ?? 0;
self.delete(idleId ?? -1);
const total = [...self.values()].reduce((a, b) => a + b, 0);
const place = (node: ProfileNode) => {
  const url = node.callFrame.url.replace(/^file:\/\/.*?\/(node_modules|dist|src)\//, '$1/');
  return url ? `${url}:${node.callFrame.lineNumber + 1}` : '(native)';
};
const sum = (key: (node: ProfileNode) => string) => {
  const totals = new Map<string, number>();
  for (const [id, us] of self) {
    const name = key(byId.get(id)!);
    totals.set(name, (totals.get(name) ?? 0) + us);
  }
  return [...totals].sort((a, b) => b[1] - a[1]).slice(0, Number(top));
};
const lines = [`${file.split('/').pop()}: ${(total / 1e6).toFixed(1)} s busy, ${(idle / 1e6).toFixed(1)} s idle; shares of the busy time`, '', '| self % | function | where |', '|---|---|---|'];
for (const [name, us] of sum((node) => `${node.callFrame.functionName || '(anonymous)'}\t${place(node)}`)) {
  const [fn, where] = name.split('\t');
  lines.push(`| ${((us / total) * 100).toFixed(1)} | ${fn} | ${where} |`);
}
lines.push('', '| self % | file |', '|---|---|');
for (const [url, us] of sum((node) => (node.callFrame.url ? place(node).replace(/:\d+$/, '') : `(${node.callFrame.functionName})`))) lines.push(`| ${((us / total) * 100).toFixed(1)} | ${url} |`);
process.stdout.write(`${lines.join('\n')}\n`);
