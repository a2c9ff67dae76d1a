/** The results: a machine description, one markdown table, and the JSON with every run. */
import { cpus, loadavg, release, totalmem } from 'node:os';
import type { BenchOptions, Column, ScenarioReport } from './context.js';
import type { System } from './systems/process.js';

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  versions: Record<string, string>;
  /** Anything else on the machine shows here: the numbers are only as quiet as it was. */
  loadAverageAtStart: number[];
}

export function describeMachine(systems: readonly System[], missing: Record<string, string>): Machine {
  const cpuList = cpus();
  return {
    cpu: cpuList[0]?.model.trim() ?? 'unknown',
    cores: cpuList.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: `Linux ${release()}`,
    node: process.version,
    versions: { ...Object.fromEntries(systems.map((system) => [system.name, system.version])), ...missing },
    loadAverageAtStart: loadavg().map((value) => Number(value.toFixed(2))),
  };
}

const COLUMNS: Column[] = ['tubecache', 'nginx', 'varnish', 'node', 'baseline'];
const cell = (text: string | undefined) => (text ?? '').replaceAll('|', '\\|');

export function markdown(options: { date: string; machine: Machine; options: BenchOptions; reports: ScenarioReport[]; failures: { id: string; error: string }[]; elapsedS: number }): string {
  const { machine, reports } = options;
  const o = options.options;
  const lines = [
    `## tubecache benchmark, ${options.date}${o.quick ? ' (quick mode)' : ''}`,
    '',
    `Machine: ${machine.cores} × ${machine.cpu}, ${machine.memoryGiB} GiB, ${machine.kernel}; Node ${machine.node}; ${Object.values(machine.versions).join('; ')}. Load average at start: ${machine.loadAverageAtStart.join(' ')}.`,
    '',
    o.cpus
      ? `Every system under test is pinned to CPU ${o.cpus.systems} (nginx with one worker per pinned CPU; tubecache is one event loop), the load generator, origin and S3 server to CPU ${o.cpus.bench}: a per-core comparison. `
      : 'No CPU pinning (BENCH_PIN=0): the systems, the load generator, origin and S3 share every core. ',
    (Object.keys(o.tubecacheEnv).length ? `tubecache ran with ${Object.entries(o.tubecacheEnv).map(([name, value]) => `${name}=${value}`).join(' ')}. ` : '') +
    `Load runs: ${o.runs} × ${o.durationMs / 1000} s per system, alternating, after ${o.warmupMs / 1000} s of warm-up; figures are the median run. All on 127.0.0.1, bodies counted by a raw-socket client (bench/load.ts). Whole run: ${Math.round(options.elapsedS)} s.`,
    '',
    '| # | scenario | metric | tubecache | nginx | varnish | bare node | baseline | target | met |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const report of reports) {
    report.rows.forEach((row, index) => {
      const first = index === 0;
      const verdict = report.verdict.met === undefined ? 'n/a' : report.verdict.met ? '✅ yes' : '❌ no';
      lines.push(
        `| ${first ? report.id : ''} | ${first ? cell(report.title) : ''} | ${cell(row.metric)} | ${COLUMNS.map((column) => cell(row.values[column])).join(' | ')} | ${first ? cell(report.target) : ''} | ${first ? `${verdict}: ${cell(report.verdict.measured)}` : ''} |`,
      );
    });
  }
  for (const failure of options.failures) lines.push(`| ${failure.id} | failed | ${cell(failure.error.split('\n')[0])} | | | | | | | ❌ |`);
  const explained = reports.filter((report) => report.baseline || report.notes.length);
  if (explained.length) {
    lines.push('');
    for (const report of explained) {
      const parts = [report.baseline ? `baseline = ${report.baseline}` : '', ...report.notes].filter(Boolean);
      lines.push(`- ${report.id}: ${parts.join('; ')}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
