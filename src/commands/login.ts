import { Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base.js';
import { EXIT, usageError } from '../cli/errors.js';
import { note, printData, warn } from '../cli/output.js';
import { DEFAULT_SECRET_NAME, validSecretName } from '../names.js';
import { renderResult, summarize } from '../refresh/report.js';

export default class Login extends BaseCommand {
  static override summary = 'Write an ECR pull secret into namespaces and attach it to service accounts.';

  static override description = `Gets an ECR authorization token with the AWS SDK (default credential chain, --profile) and writes it as a kubernetes.io/dockerconfigjson Secret in each target namespace, updating the Secret in place and keeping entries for other registries. The secret is added to service accounts without dropping their other pull secrets. The in-cluster refresher (install-cron) runs this same command.`;

  static override examples = [
    { description: 'Your account\'s registry in the current region, into the current namespace', command: '<%= config.bin %> <%= command.id %>' },
    { description: 'Two registries, into two namespaces', command: '<%= config.bin %> <%= command.id %> --registry 123456789012.dkr.ecr.eu-west-1.amazonaws.com --registry 123456789012.dkr.ecr.us-east-1.amazonaws.com -n team-a -n team-b' },
    { description: 'Every namespace, attached to the service account "builder" only', command: '<%= config.bin %> <%= command.id %> -A --service-account builder' },
  ];

  static override flags = {
    registry: Flags.string({ multiple: true, description: 'ECR registry host, e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com (repeatable). Default: your account in --region.' }),
    'secret-name': Flags.string({ description: `Name of the pull secret. Default: ${DEFAULT_SECRET_NAME}.` }),
    'all-namespaces': Flags.boolean({ char: 'A', description: 'Write the secret in every namespace.', exclusive: ['namespace'] }),
    'namespace-selector': Flags.string({ description: 'Write the secret in every namespace whose labels match this selector (e.g. team=web,env!=dev).', exclusive: ['namespace'] }),
    'exclude-namespace': Flags.string({ multiple: true, description: 'Leave out namespaces matching this glob (repeatable), e.g. kube-*.' }),
    account: Flags.string({ multiple: true, description: 'AWS account id whose registry in --region to use (repeatable); shorthand for --registry.' }),
    'role-arn': Flags.string({ description: 'IAM role to assume on top of the base credentials.', helpGroup: 'AWS' }),
    'role-session-name': Flags.string({ description: 'Session name for --role-arn (shows in CloudTrail). Default: kubectl-ecr.', helpGroup: 'AWS', dependsOn: ['role-arn'] }),
    'external-id': Flags.string({ description: 'External id the role\'s trust policy requires.', helpGroup: 'AWS', dependsOn: ['role-arn'] }),
    'service-account': Flags.string({ multiple: true, description: 'Service account to attach the secret to (repeatable). Default: default.', exclusive: ['no-service-account'] }),
    'no-service-account': Flags.boolean({ description: 'Attach the secret to no service account.' }),
    force: Flags.boolean({ description: 'Take over a same-named secret that kubectl-ecr does not manage.' }),
    'dry-run': Flags.string({ options: ['none', 'client', 'server'], default: 'none', description: 'client: change nothing and show what would be written (token redacted); server: let the API server validate without saving.' }),
    settings: Flags.string({ description: 'Read settings from this YAML file (as install-cron writes them); flags override it.' }),
    output: Flags.string({ char: 'o', options: ['json', 'yaml'], description: 'Print the secrets written (token redacted) on stdout.' }),
  };

  async run(): Promise<void> {
    const parsed = await this.parse(Login);
    const { loadSettingsFile, withSettings } = await import('../refresh/settings-file.js');
    const settings = parsed.flags.settings ? await loadSettingsFile(parsed.flags.settings) : {};
    const flags = withSettings(parsed.flags, settings);
    const dryRun = flags['dry-run'] as 'none' | 'client' | 'server';
    const { parseRegistry, registryFor, uniqueRegistries, unknownRegion } = await import('../aws/registry.js');
    const registries = (flags.registry ?? []).map(parseRegistry);
    if (flags.region) for (const account of flags.account ?? []) registries.push(registryFor(account, flags.region));
    for (const r of registries.filter(unknownRegion)) warn(`${r.host}: the AWS SDK does not know region ${r.region}; check for a typo`);
    const { excludeMatcher, validateSelector } = await import('../kube/namespaces.js');
    excludeMatcher(flags['exclude-namespace']);
    validateSelector('--namespace-selector', flags['namespace-selector']);
    if (!validSecretName(flags['secret-name'])) {
      throw usageError(`--secret-name "${flags['secret-name']}" is not a valid Secret name`, 'use lower-case letters, digits, "-" and "."');
    }

    const { loadKubeConfig } = await import('../kube/config.js');
    const cluster = await loadKubeConfig(flags);

    const { openSession, whoAmI, requireRegion } = await import('../aws/session.js');
    const session = await openSession({
      profile: flags.profile,
      region: flags.region,
      roleArn: flags['role-arn'],
      roleSessionName: flags['role-session-name'],
      externalId: flags['external-id'],
    });
    const identity = await whoAmI(session);
    note(`Using AWS identity ${identity.arn}`);
    // --account without --region takes the region from the environment or profile, as --region does.
    if (!flags.region) for (const account of flags.account ?? []) registries.push(registryFor(account, requireRegion(session)));
    if (registries.length === 0) registries.push(registryFor(identity.account, requireRegion(session)));

    const { fetchTokens } = await import('../aws/tokens.js');
    const tokens = await fetchTokens(session, uniqueRegistries(registries));

    const { connect, clusterError } = await import('../kube/api.js');
    const { resolveNamespaces } = await import('../kube/namespaces.js');
    const kube = await connect(cluster.kc);
    const fail = (err: unknown) => {
      throw clusterError(kube.server, err) ?? err;
    };
    const namespaces = await resolveNamespaces(kube.core, {
      namespaces: flags.namespace,
      all: flags['all-namespaces'],
      selector: flags['namespace-selector'],
      exclude: flags['exclude-namespace'],
      current: cluster.namespace,
    }).catch(fail);
    if (namespaces.length === 0) {
      note('No namespace matched; nothing to do.');
      return;
    }

    const { refresh } = await import('../refresh/engine.js');
    const results = await refresh(
      kube.core,
      {
        secretName: flags['secret-name'],
        namespaces,
        tokens,
        serviceAccounts: flags['no-service-account'] ? [] : (flags['service-account'] ?? ['default']),
        identity: identity.arn,
        install: settings.install,
        force: flags.force,
        dryRun,
      },
      (r) => note(renderResult(r, flags['secret-name'], dryRun)),
    ).catch(fail);

    const summary = summarize(results, dryRun);
    note(summary.line);
    if (flags.output) printData(flags.output as 'json' | 'yaml', results.flatMap((r) => (r.object ? [r.object] : [])));
    if (summary.failed > 0) this.exit(EXIT.failure);
  }
}
