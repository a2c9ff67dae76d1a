import test from 'ava';
import { parser } from '@prometheus-io/lezer-promql';
import { Histogram } from 'prom-client';
import { createMetrics } from '../../src/metrics.js';
import { readDeploy, readYaml } from './files.js';

/** Labels Prometheus adds to every scraped series. */
const TARGET_LABELS = ['instance', 'job'];

/** Every series name the service exposes, with the labels each may carry (histograms as _bucket/_sum/_count). */
function exposedSeries(): Map<string, string[]> {
  const series = new Map<string, string[]>();
  for (const metric of createMetrics().registry.getMetricsAsArray()) {
    const { name, labelNames = [] } = metric as typeof metric & { labelNames?: string[] };
    if (metric instanceof Histogram) {
      series.set(`${name}_bucket`, [...labelNames, 'le']);
      series.set(`${name}_sum`, labelNames);
      series.set(`${name}_count`, labelNames);
    } else series.set(name, labelNames);
  }
  return series;
}

interface Selector {
  metric: string;
  labels: string[];
}

/** Parses a PromQL expression with Prometheus's own grammar; returns its selectors, or the text of the first syntax error. */
function selectors(expr: string): Selector[] | string {
  const found: Selector[] = [];
  let error: string | undefined;
  parser.parse(expr).iterate({
    enter(node) {
      if (node.type.isError) error ??= `syntax error at ${node.from}: "${expr.slice(Math.max(0, node.from - 20), node.to + 20)}"`;
      if (node.name !== 'VectorSelector') return;
      const identifier = node.node.getChild('Identifier');
      const matchers = node.node.getChild('LabelMatchers');
      if (!identifier) return;
      found.push({
        metric: expr.slice(identifier.from, identifier.to),
        labels: matchers ? matchers.getChildren('UnquotedLabelMatcher').map((matcher) => expr.slice(matcher.getChild('LabelName')!.from, matcher.getChild('LabelName')!.to)) : [],
      });
    },
  });
  return error ?? found;
}

const dashboard = JSON.parse(readDeploy('grafana/tubecache-dashboard.json'));
const dashboardExprs: { where: string; expr: string }[] = dashboard.panels.flatMap((panel: { title: string; targets: { expr: string }[] }) =>
  panel.targets.map((target) => ({ where: `dashboard "${panel.title}"`, expr: target.expr })),
);
const alertRules = readYaml('prometheus/alerts.yaml').groups.flatMap((group: { rules: { alert: string; expr: string }[] }) => group.rules);
const alertExprs = alertRules.map((rule: { alert: string; expr: string }) => ({ where: `alert ${rule.alert}`, expr: rule.expr }));

test('every PromQL expression in the dashboard and the alerts parses, and queries only series the service exposes, by labels they carry', (t) => {
  const exposed = exposedSeries();
  t.true(dashboardExprs.length >= 20 && alertExprs.length >= 4);
  for (const { where, expr } of [...dashboardExprs, ...alertExprs]) {
    const found = selectors(expr);
    if (typeof found === 'string') {
      t.fail(`${where}: ${found}`);
      continue;
    }
    t.true(found.length > 0, `${where} queries no metric`);
    for (const { metric, labels } of found) {
      const known = exposed.get(metric);
      if (!known) {
        t.fail(`${where}: ${metric} is not exposed by the service`);
        continue;
      }
      for (const label of labels) t.true([...known, ...TARGET_LABELS].includes(label), `${where}: ${metric} has no label "${label}"`);
    }
  }
});

test('the checks fail on a misspelt metric, an unknown label or broken syntax (they are not vacuous)', (t) => {
  const exposed = exposedSeries();
  const [misspelt] = selectors('sum(rate(tubecache_request_total[5m]))') as Selector[];
  t.false(exposed.has(misspelt!.metric));
  const [histogram] = selectors('rate(tubecache_first_byte_seconds_bucket{cache="HIT"}[5m])') as Selector[];
  t.false(exposed.get(histogram!.metric)!.includes(histogram!.labels[0]!));
  t.is(typeof selectors('sum(rate(tubecache_requests_total[5m])'), 'string');
});

test('the dashboard covers what operators asked for, and the alerts the four failure modes', (t) => {
  const all = dashboardExprs.map(({ expr }) => expr).join('\n');
  for (const needed of ['tubecache_requests_total', 'tubecache_served_bytes_total', 'histogram_quantile', 'tubecache_origin_bytes_total', 'tubecache_store_operations_total{outcome="error"}', 'tubecache_store_available', 'tubecache_uploads_dropped_total', 'tubecache_memory_cache_budget_bytes', 'tubecache_slice_bytes_live', 'tubecache_leases_total', 'tubecache_disk_cache_bytes', 'tubecache_slices_passed_through_total']) {
    t.true(all.includes(needed), needed);
  }
  t.deepEqual(
    alertRules.map((rule: { alert: string }) => rule.alert),
    ['TubecacheStoreUnavailable', 'TubecacheUploadsDropped', 'TubecacheOriginShareHigh', 'TubecacheYtdlpFailing', 'TubecacheYtdlpRestricted'],
  );
  for (const rule of alertRules) t.truthy(rule.labels?.severity && rule.annotations?.summary, rule.alert);
  t.is(dashboard.templating.list[0].type, 'datasource', 'import picks the Prometheus data source');
});
