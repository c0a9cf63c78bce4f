// ECR authorization tokens: one GetAuthorizationToken per group of registries that can share a
// token (same partition, region and endpoint variant), fanned back out to every host.
import type { ECRClientConfig } from '@aws-sdk/client-ecr';
import { debug } from '../cli/log.js';
import { groupRegistries, type Registry } from './registry.js';
import { SecretValue } from './secret-value.js';
import { awsError, type AwsSession } from './session.js';

const log = debug('tokens');

export interface RegistryToken {
  registry: Registry;
  username: string;
  password: SecretValue;
  expiresAt: Date;
}

/**
 * The client settings for one group. The SDK refuses FIPS or dual-stack together with a custom
 * endpoint (AWS_ENDPOINT_URL, as a test bed or a VPC endpoint uses): the endpoint then decides.
 */
export function ecrClientConfig(
  group: Registry,
  session: Pick<AwsSession, 'credentials' | 'profile' | 'requestHandler'>,
  env: NodeJS.ProcessEnv = process.env,
): ECRClientConfig {
  const customEndpoint = Boolean(env.AWS_ENDPOINT_URL_ECR || env.AWS_ENDPOINT_URL);
  return {
    region: group.region,
    credentials: session.credentials,
    ...(session.profile ? { profile: session.profile } : {}),
    ...(session.requestHandler ? { requestHandler: session.requestHandler } : {}),
    ...(customEndpoint ? {} : { useFipsEndpoint: group.fips, useDualstackEndpoint: group.dualStack }),
  };
}

export async function fetchTokens(session: AwsSession, registries: Registry[]): Promise<RegistryToken[]> {
  const { ECRClient, GetAuthorizationTokenCommand } = await import('@aws-sdk/client-ecr');
  const groups = groupRegistries(registries);

  const perGroup = await Promise.all(
    groups.map(async (group) => {
      const client = new ECRClient(ecrClientConfig(group[0], session));
      try {
        const out = await client.send(new GetAuthorizationTokenCommand({}));
        const data = out.authorizationData?.[0];
        if (!data?.authorizationToken) throw new Error('ECR returned no authorization data');
        const [username, ...rest] = Buffer.from(data.authorizationToken, 'base64').toString('utf8').split(':');
        const password = new SecretValue(rest.join(':'));
        const expiresAt = data.expiresAt ?? new Date(Date.now() + 12 * 3600_000);
        log(`region ${group[0].region}: token for ${group.length} host(s), expires ${expiresAt.toISOString()}`);
        return group.map((registry) => ({ registry, username, password, expiresAt }));
      } catch (err) {
        throw awsError(`ecr:GetAuthorizationToken in ${group[0].region}`, err);
      } finally {
        client.destroy();
      }
    }),
  );
  return perGroup.flat();
}
