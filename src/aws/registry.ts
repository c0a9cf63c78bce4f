// ECR registry hosts: parse every form ECR serves, and derive what a token request needs from the
// host alone (account, region, partition, FIPS, dual-stack).
import { partition as sdkPartition } from '@aws-sdk/core/client';
import { UserError } from '../cli/errors.js';

export interface Registry {
  /** The host exactly as images name it; the key in the secret's `auths`. */
  host: string;
  account: string;
  region: string;
  /** AWS partition id: aws, aws-cn, aws-us-gov, aws-iso, ... */
  partition: string;
  fips: boolean;
  dualStack: boolean;
}

const EXPECTED =
  'expected ACCOUNT.dkr.ecr.REGION.amazonaws.com (or .amazonaws.com.cn, ' +
  'ACCOUNT.dkr.ecr-fips.REGION.amazonaws.com, ACCOUNT.dkr-ecr.REGION.on.aws)';

// ACCOUNT . dkr.ecr | dkr.ecr-fips | dkr-ecr . REGION . SUFFIX
const HOST = /^(\d{12})\.(dkr\.ecr|dkr\.ecr-fips|dkr-ecr)\.([a-z]{2,}(?:-[a-z]+)+-\d+)\.([a-z0-9.-]+)$/;

/** Dual-stack registry suffixes per partition (`dkr-ecr` form); others use the partition suffix. */
const DUAL_STACK_SUFFIX: Record<string, string> = {
  aws: 'on.aws',
  'aws-cn': 'on.amazonwebservices.com.cn',
};

export function parseRegistry(input: string): Registry {
  const host = input
    .trim()
    .toLowerCase()
    .replace(/^https?:\/\//, '')
    .replace(/\/+$/, '');
  const m = HOST.exec(host);
  if (!m) {
    throw new UserError('InvalidRegistry', `"${input}" is not an ECR registry host`, EXPECTED);
  }
  const [, account, kind, region, suffix] = m;
  const info = sdkPartition(region);
  const dualStack = kind === 'dkr-ecr';
  const expectedSuffix = dualStack ? DUAL_STACK_SUFFIX[info.name] : info.dnsSuffix;

  if (!expectedSuffix) {
    throw new UserError(
      'UnknownPartition',
      `"${input}": dual-stack ECR hosts are not known for partition ${info.name}`,
      'use the ACCOUNT.dkr.ecr.REGION form',
    );
  }
  if (suffix !== expectedSuffix) {
    const known = knownSuffixes().includes(suffix);
    throw new UserError(
      'UnknownPartition',
      known
        ? `"${input}": region ${region} belongs to partition ${info.name}, whose hosts end in .${expectedSuffix}`
        : `"${input}": .${suffix} is not the domain of any AWS partition the SDK knows`,
      EXPECTED,
    );
  }
  return { host, account, region, partition: info.name, fips: kind === 'dkr.ecr-fips', dualStack };
}

/** A region the SDK's partition data does not list: often a typo (us-eest-1), sometimes brand new. */
export function unknownRegion(r: Registry): boolean {
  return !(sdkPartition(r.region) as { description?: string }).description;
}

/** The default registry host of an account in a region: what `--account` and no flag mean. */
export function registryFor(account: string, region: string): Registry {
  if (!/^\d{12}$/.test(account)) {
    throw new UserError('InvalidAccount', `"${account}" is not an AWS account id`, 'expected 12 digits');
  }
  const suffix = sdkPartition(region).dnsSuffix;
  return parseRegistry(`${account}.dkr.ecr.${region}.${suffix}`);
}

function knownSuffixes(): string[] {
  const regions = ['us-east-1', 'cn-north-1', 'us-gov-west-1', 'us-iso-east-1', 'us-isob-east-1'];
  return [...regions.map((r) => sdkPartition(r).dnsSuffix), ...Object.values(DUAL_STACK_SUFFIX)];
}

/**
 * Hosts that one token serves: ECR tokens are per region and principal, so one request per
 * (partition, region, endpoint variant) group covers every registry in it, whatever the account.
 */
export function groupRegistries(registries: Registry[]): Registry[][] {
  const groups = new Map<string, Registry[]>();
  for (const r of registries) {
    const key = `${r.partition}/${r.region}/${r.fips ? 'fips' : ''}/${r.dualStack ? 'ds' : ''}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups.values()];
}

export function uniqueRegistries(registries: Registry[]): Registry[] {
  return [...new Map(registries.map((r) => [r.host, r])).values()];
}
