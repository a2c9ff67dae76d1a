import { Command, CommanderError } from 'commander';
import { loadConfig, type Config } from './config.js';
import { ConfigError } from './errors.js';
import { Service } from './service.js';

/** Exit codes shared by every command: 0 done, 1 partial failure, 2 bad usage or configuration. */
export const EXIT = { ok: 0, partial: 1, usage: 2 } as const;

function config(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`tubecache: invalid configuration: ${error.message}\n`);
      process.exit(EXIT.usage);
    }
    throw error;
  }
}

async function serve(): Promise<void> {
  const service = await Service.create(config());
  const { url } = await service.listen();
  service.logger.info({ url, s3: service.config.S3_ENDPOINT || 'embedded', format: service.config.YTDLP_FORMAT }, 'tubecache listening');
  const stop = async (signal: string) => {
    service.logger.info({ signal }, 'shutting down');
    await service.close();
    process.exit(EXIT.ok);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

const program = new Command('tubecache')
  .description('A tiered cache (memory → S3 → yt-dlp/origin) for YouTube video bytes.')
  .exitOverride()
  .showHelpAfterError();

program.command('serve').description('run the service (what npm start runs)').action(serve);

try {
  await program.parseAsync();
} catch (error) {
  if (error instanceof CommanderError) process.exit(error.exitCode === 0 ? EXIT.ok : EXIT.usage);
  if (error instanceof ConfigError) {
    process.stderr.write(`tubecache: invalid configuration: ${error.message}\n`);
    process.exit(EXIT.usage);
  }
  process.stderr.write(`tubecache: ${(error as Error).stack ?? error}\n`);
  process.exit(1);
}
