import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

/** Debian's chromium, driven by playwright-core (no downloaded browser). */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Screenshots and other test output (git-ignored). */
export const ARTIFACTS = new URL('../artifacts/', import.meta.url);

/** Why browser tests cannot run here, or undefined when they can. */
export const chromiumMissing = existsSync(CHROMIUM) ? undefined : `skipped: ${CHROMIUM} is not installed (.ci/run installs Debian's chromium; or set CHROMIUM_PATH)`;

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** Headless Chromium in a fresh profile, with nothing of its own on the network (no QUIC, updates or sync). */
export async function launchChromium(options: { viewport: { width: number; height: number }; args?: string[] }): Promise<Browser> {
  const userDataDir = await mkdtemp(join(tmpdir(), 'tubecache-chromium-'));
  try {
    const context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: options.viewport,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run',
        '--disable-quic',
        '--disable-sync',
        ...(options.args ?? []),
      ],
    });
    return {
      context,
      async close() {
        await context.close();
        await rm(userDataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(userDataDir, { recursive: true, force: true });
    throw error;
  }
}
