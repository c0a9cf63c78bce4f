// The AWS side of a run: which credentials (the SDK's default chain, a profile), which region, and
// who that is (STS GetCallerIdentity). Errors become one line a user can act on.
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { UserError } from '../cli/errors.js';
import { debug } from '../cli/log.js';
import { warn } from '../cli/output.js';
import { awsRequestHandler, type AwsRequestHandler } from '../net/proxy.js';

const log = debug('aws');

export interface AwsOptions {
  profile?: string;
  region?: string;
  /** A role to assume on top of the base credentials. */
  roleArn?: string;
  roleSessionName?: string;
  externalId?: string;
}

export interface AwsSession {
  credentials: AwsCredentialIdentityProvider;
  /** The region from --region, the environment or the profile; undefined when none is set. */
  region: string | undefined;
  profile?: string;
  /** Proxy-aware agents when HTTPS_PROXY and friends are set; the SDK's default otherwise. */
  requestHandler?: AwsRequestHandler;
}

const ROLE_ARN = /^arn:aws(-[a-z]+)*:iam::\d{12}:role\/[\w+=,.@\/-]{1,512}$/;

/** Checked before any call, so a typo costs no round trip. */
export function validateRoleArn(arn: string): void {
  if (!ROLE_ARN.test(arn)) {
    throw new UserError('InvalidRoleArn', `"${arn}" is not an IAM role ARN`, 'expected arn:aws:iam::ACCOUNT:role/NAME');
  }
}

export interface Identity {
  arn: string;
  account: string;
}

export async function openSession(opts: AwsOptions): Promise<AwsSession> {
  if (opts.roleArn) validateRoleArn(opts.roleArn);
  const { fromNodeProviderChain, fromTemporaryCredentials } = await import('@aws-sdk/credential-providers');
  const requestHandler = awsRequestHandler();
  const region = opts.region ?? (await regionFromConfig(opts.profile));
  const viaProxy = requestHandler ? { requestHandler } : {};

  // The chain covers environment keys, profiles and SSO, web identity (IRSA), EKS Pod Identity and
  // ECS container credentials, and the instance role, in the SDK's order.
  if (opts.profile && process.env.AWS_ACCESS_KEY_ID && process.env.AWS_SECRET_ACCESS_KEY) {
    warn(`--profile ${opts.profile} is used; the AWS_ACCESS_KEY_ID in the environment is ignored`);
  }
  let credentials: AwsCredentialIdentityProvider = fromNodeProviderChain({
    ...(opts.profile ? { profile: opts.profile } : {}),
    // The SDK's own notices (multi-line) go to the debug log; what matters is said in one line.
    logger: { debug: log, info: log, warn: (m: unknown) => log(String(m)), error: (m: unknown) => log(String(m)) },
    clientConfig: { ...viaProxy, ...(region ? { region } : {}) },
  });
  if (opts.profile) {
    const base = credentials;
    const profile = opts.profile;
    credentials = async (...args) => {
      try {
        return await base(...args);
      } catch (err) {
        if ((err as Error).name !== 'CredentialsProviderError') throw err;
        throw new UserError('ProfileNotFound', `AWS profile "${profile}" gave no credentials (missing or incomplete in the AWS config and credentials files)`, 'check it with `aws configure list-profiles`', 1, { cause: err });
      }
    };
  }
  if (opts.roleArn) {
    const assumed = fromTemporaryCredentials({
      masterCredentials: credentials,
      params: { RoleArn: opts.roleArn, RoleSessionName: opts.roleSessionName ?? 'kubectl-ecr', ...(opts.externalId ? { ExternalId: opts.externalId } : {}) },
      clientConfig: { ...viaProxy, ...(region ? { region } : {}) },
    });
    const roleArn = opts.roleArn;
    credentials = async (...args) => {
      try {
        return await assumed(...args);
      } catch (err) {
        throw awsError(`sts:AssumeRole on ${roleArn}`, err);
      }
    };
  }
  log(`profile=${opts.profile ?? '(default chain)'} region=${region ?? '(none)'} role=${opts.roleArn ?? '(none)'} proxy=${requestHandler ? 'yes' : 'no'}`);
  return { credentials, region, profile: opts.profile, requestHandler };
}

async function regionFromConfig(profile: string | undefined): Promise<string | undefined> {
  const { STSClient } = await import('@aws-sdk/client-sts');
  const client = new STSClient(profile ? { profile } : {});
  try {
    return await client.config.region();
  } catch {
    return undefined;
  } finally {
    client.destroy();
  }
}

export function requireRegion(session: AwsSession): string {
  if (session.region) return session.region;
  throw new UserError(
    'NoRegion',
    'no AWS region is set',
    'pass --region, set AWS_REGION, or set a region in your AWS profile',
  );
}

export async function whoAmI(session: AwsSession): Promise<Identity> {
  const { STSClient, GetCallerIdentityCommand } = await import('@aws-sdk/client-sts');
  const client = new STSClient({
    region: requireRegion(session),
    credentials: session.credentials,
    ...(session.requestHandler ? { requestHandler: session.requestHandler } : {}),
  });
  try {
    const out = await client.send(new GetCallerIdentityCommand({}));
    return { arn: out.Arn ?? 'unknown', account: out.Account ?? '' };
  } catch (err) {
    throw awsError('sts:GetCallerIdentity', err);
  } finally {
    client.destroy();
  }
}

/** Turn an SDK failure into one line saying what failed and what to do. */
export function awsError(action: string, err: unknown): Error {
  if (err instanceof UserError) return err;
  const e = err as { name?: string; message?: string; code?: string; $metadata?: unknown };
  const name = e.name ?? '';
  const message = (e.message ?? String(err)).split('\n')[0];
  if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(message)) {
    return new UserError(
      'NoCredentials',
      'no AWS credentials found',
      'pass --profile, set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run `aws sso login`',
      1,
      { cause: err },
    );
  }
  if (/AccessDenied|UnauthorizedOperation|NotAuthorized/i.test(name)) {
    return new UserError('AccessDenied', `AWS denied ${action}: ${message}`, `grant ${action}`, 1, {
      cause: err,
    });
  }
  if (/InvalidClientTokenId|SignatureDoesNotMatch|ExpiredToken|UnrecognizedClient/i.test(name)) {
    return new UserError(
      'InvalidCredentials',
      `AWS rejected the credentials (${name})`,
      'check the access key, or refresh the session with `aws sso login`',
      1,
      { cause: err },
    );
  }
  if (/ECONNREFUSED|ENOTFOUND|ETIMEDOUT|EAI_AGAIN|ECONNRESET/.test(`${e.code} ${message}`)) {
    return new UserError('AwsUnreachable', `cannot reach AWS for ${action}: ${message}`, 'check the network, proxy and AWS_ENDPOINT_URL', 1, {
      cause: err,
    });
  }
  return new UserError('AwsError', `${action} failed: ${name ? `${name}: ` : ''}${message}`, undefined, 1, {
    cause: err,
  });
}
