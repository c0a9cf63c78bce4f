// The base of every cluster command: kubectl's connection flags, the AWS flags, and one way to fail
// (one line on stderr, a stable exit code, a stack trace only when debugging).
import { Command, Errors, Flags, type Interfaces } from '@oclif/core';
import { debugEnabled, enableDebug } from './log.js';
import { errorLine } from './output.js';
import { EXIT, UserError, usageError } from './errors.js';
import { describeFailure } from '../kube/api.js';

export abstract class BaseCommand extends Command {
  static override baseFlags = {
    kubeconfig: Flags.string({ description: 'Path to the kubeconfig file to use.', helpGroup: 'KUBERNETES' }),
    context: Flags.string({ description: 'The kubeconfig context to use.', helpGroup: 'KUBERNETES' }),
    namespace: Flags.string({
      char: 'n',
      multiple: true,
      description: 'Namespace to act in (repeatable). Default: the context\'s namespace, else "default".',
      helpGroup: 'KUBERNETES',
    }),
    region: Flags.string({ description: 'AWS region. Default: AWS_REGION or the profile\'s region.', helpGroup: 'AWS' }),
    profile: Flags.string({ description: 'AWS named profile. Default: AWS_PROFILE or the default chain.', helpGroup: 'AWS' }),
    debug: Flags.boolean({ description: 'Print debug lines and stack traces on stderr (never secrets).', helpGroup: 'GLOBAL' }),
  };

  protected override async init(): Promise<void> {
    await super.init();
    if (this.argv.includes('--debug')) enableDebug();
  }

  protected override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<unknown> {
    if (err instanceof Errors.ExitError) throw err;
    if (isParseError(err)) {
      errorLine(`${parseMessage(err.message)}; see \`kubectl ecr ${this.id} --help\``);
      return this.exit(EXIT.usage);
    }
    if (err instanceof UserError) {
      errorLine(err.line());
      if (debugEnabled()) process.stderr.write(`${err.cause instanceof Error ? err.cause.stack : err.stack}\n`);
      return this.exit(err.exitCode);
    }
    errorLine(describeFailure(err));
    if (debugEnabled()) process.stderr.write(`${err.stack}\n`);
    else process.stderr.write('(run with --debug for details)\n');
    return this.exit(EXIT.failure);
  }

  /** Reject a flag combination before anything touches the network. */
  protected conflict(a: string, b: string, why?: string): never {
    throw usageError(`--${a} and --${b} cannot be used together${why ? ` (${why})` : ''}`);
  }
}

function isParseError(err: unknown): boolean {
  const e = err as { parse?: unknown; constructor?: { name?: string }; message?: string };
  return Boolean(e?.parse) || /^Parsing --/.test(e?.message ?? '') || /Parse|Parsing|FlagInvalid|NonExistentFlags|RequiredArgs|UnexpectedArgs|Validation/.test(e?.constructor?.name ?? '');
}

/** oclif's parse messages span lines with a preamble; keep the substance on one line. */
function parseMessage(message: string): string {
  return message
    .replace(/The following errors? occurred:/i, '')
    .replace(/See more help with --help/i, '')
    .replace(/^Parsing (--[\w-]+)\s*$/m, '$1:')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .join('; ')
    .replace(/:; /g, ': ');
}

export type BaseFlags = Interfaces.InferredFlags<typeof BaseCommand.baseFlags>;
