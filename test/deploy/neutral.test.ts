import test from 'ava';
import { deployFiles, readDeploy } from './files.js';

/** Lines that configure something: comments may name servers, settings may not. */
const settingsOf = (file: string) =>
  readDeploy(file)
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n');

test('no deploy file uses MinIO (an archived server) by default', (t) => {
  const files = deployFiles();
  t.true(files.length >= 10, files.join(' '));
  t.deepEqual(files.filter((file) => /minio/i.test(settingsOf(file))), []);
});
