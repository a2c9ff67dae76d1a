import test from 'ava';
import { Deployment } from 'kubernetes-models/apps/v1';
import { CronJob } from 'kubernetes-models/batch/v1';
import { ConfigMap, Service } from 'kubernetes-models/v1';
import { readYamlDocuments, unknownSettings } from './files.js';

/** The kinds deploy/k8s/ holds, each checked against its OpenAPI schema by kubernetes-models. */
const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'batch/v1/CronJob': CronJob,
};

const FILES = ['configmap.yaml', 'deployment.yaml', 'service.yaml', 'prune-cronjob.yaml'];
const manifests = FILES.flatMap((file) => readYamlDocuments(`k8s/${file}`).map((manifest) => ({ file, manifest })));
const find = (kind: string) => manifests.find(({ manifest }) => manifest.kind === kind)!.manifest;

test('every manifest validates against its Kubernetes schema', (t) => {
  t.is(manifests.length, FILES.length);
  for (const { file, manifest } of manifests) {
    const Model = MODELS[`${manifest.apiVersion}/${manifest.kind}`];
    if (!Model) return t.fail(`${file}: no schema for ${manifest.apiVersion} ${manifest.kind}`);
    t.notThrows(() => new Model(manifest).validate(), file);
  }
});

test('the schema check rejects a broken manifest (it is not vacuous)', (t) => {
  const deployment = structuredClone(find('Deployment'));
  deployment.spec.replicas = 'two';
  t.throws(() => new Deployment(deployment).validate());
  const configMap = structuredClone(find('ConfigMap'));
  configMap.data.PORT = 8080;
  t.throws(() => new ConfigMap(configMap).validate(), undefined, 'ConfigMap values are strings');
});

test('the ConfigMap sets only tubecache settings and names the S3 endpoint by configuration only', (t) => {
  const data = find('ConfigMap').data as Record<string, string>;
  t.deepEqual(unknownSettings(Object.keys(data)), []);
  t.regex(data.S3_ENDPOINT!, /^https?:\/\/\S+$/, 'a shared bucket, never a per-pod disk store');
  t.notRegex(data.S3_ENDPOINT!, /minio/i);
  t.is(data.PRUNE_INTERVAL, '', 'pruning is the CronJob, never the replicas');
  for (const name of ['S3_REGION', 'S3_BUCKET', 'S3_FORCE_PATH_STYLE', 'S3_CHECKSUMS', 'S3_CREATE_BUCKET']) t.true(name in data, name);
  // Keys are Secret values; the replicas and the prune job read both.
  for (const kind of ['Deployment', 'CronJob']) {
    const spec = kind === 'CronJob' ? find(kind).spec.jobTemplate.spec.template.spec : find(kind).spec.template.spec;
    t.deepEqual(spec.containers[0].envFrom, [{ configMapRef: { name: find('ConfigMap').metadata.name } }, { secretRef: { name: 'tubecache-s3' } }], kind);
  }
});

test('pods carry Prometheus scrape annotations for the port and path that serve /metrics', (t) => {
  const template = find('Deployment').spec.template;
  const container = template.spec.containers[0];
  const port = container.ports.find((p: { name: string }) => p.name === 'http').containerPort;
  t.is(String(port), find('ConfigMap').data.PORT);
  t.deepEqual(template.metadata.annotations, { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(port), 'prometheus.io/path': '/metrics' });
});

test('the ServiceMonitor example selects the Service and its named port', (t) => {
  const [monitor] = readYamlDocuments('k8s/monitoring/servicemonitor.yaml');
  const service = find('Service');
  t.is(monitor.apiVersion, 'monitoring.coreos.com/v1');
  t.is(monitor.kind, 'ServiceMonitor');
  for (const [label, value] of Object.entries(monitor.spec.selector.matchLabels)) t.is(service.metadata.labels[label], value);
  const [endpoint] = monitor.spec.endpoints;
  t.true(service.spec.ports.some((p: { name: string }) => p.name === endpoint.port));
  t.is(endpoint.path, '/metrics');
});
