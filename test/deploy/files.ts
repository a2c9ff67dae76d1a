import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { SETTINGS } from '../../src/config.js';

/** The deploy/ folder, read as an operator would copy it. */
export const DEPLOY_DIR = fileURLToPath(new URL('../../deploy/', import.meta.url));

export const readDeploy = (path: string): string => readFileSync(join(DEPLOY_DIR, path), 'utf8');

/** YAML with `<<` merge keys resolved (compose anchors), as Compose reads it. */
export const readYaml = (path: string): any => parse(readDeploy(path), { merge: true });

/** Every document of a multi-document YAML file (kubectl's reading). */
export const readYamlDocuments = (path: string): any[] => parseAllDocuments(readDeploy(path)).map((document) => document.toJS());

/** Every file under deploy/, as paths relative to it. */
export const deployFiles = (dir = DEPLOY_DIR): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? deployFiles(join(dir, entry.name)) : [relative(DEPLOY_DIR, join(dir, entry.name))],
  );

/** Names among `names` that src/config.ts does not define: each one is a variable tubecache would silently ignore. */
export const unknownSettings = (names: Iterable<string>): string[] => [...names].filter((name) => !Object.hasOwn(SETTINGS, name));
