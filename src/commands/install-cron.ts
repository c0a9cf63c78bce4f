import { Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base.js';
import { EXIT, UserError } from '../cli/errors.js';
import { note, printData, warn } from '../cli/output.js';
import { DEFAULT_INSTALL_NAME, DEFAULT_JOB_NAMESPACE, DEFAULT_SECRET_NAME, IMAGE_REPOSITORY } from '../names.js';
import { DEFAULT_SCHEDULE } from '../install/schedule.js';

export default class InstallCron extends BaseCommand {
  static override summary = 'Install the in-cluster refresher: a CronJob that runs kubectl ecr login every few hours.';

  static override description = `Applies, with server-side apply, a ServiceAccount, least-privilege RBAC, the settings in a ConfigMap, credentials by --auth, and a batch/v1 CronJob that runs \`kubectl-ecr login\` in the project's image. Then runs it once right away and waits for it. Re-running converges: what the install no longer needs (namespaces dropped, another auth mode) is pruned.`;

  static override examples = [
    { description: 'IRSA on EKS, two namespaces', command: '<%= config.bin %> <%= command.id %> --auth irsa --irsa-role-arn arn:aws:iam::123456789012:role/ecr-pull -n team-a -n team-b --registry 123456789012.dkr.ecr.eu-west-1.amazonaws.com' },
    { description: 'Every namespace, including ones created later, with EKS Pod Identity', command: '<%= config.bin %> <%= command.id %> --auth pod-identity -A --exclude-namespace "kube-*" --account 123456789012 --region us-east-1' },
    { description: 'Print the manifests for GitOps instead of applying them', command: '<%= config.bin %> <%= command.id %> --auth irsa --irsa-role-arn arn:aws:iam::123456789012:role/ecr-pull -n apps --dry-run=client -o yaml' },
  ];

  static override flags = {
    name: Flags.string({ default: DEFAULT_INSTALL_NAME, description: 'Name of this install; several can live side by side.' }),
    'job-namespace': Flags.string({ default: DEFAULT_JOB_NAMESPACE, description: 'Namespace for the CronJob, its ServiceAccount and settings (created if missing).' }),
    auth: Flags.string({ required: true, options: ['irsa', 'pod-identity', 'keys', 'node'], description: 'How the job gets AWS credentials: irsa (EKS IAM roles for service accounts), pod-identity (EKS Pod Identity), keys (an IAM user\'s access key, stored in a Secret), node (the node\'s instance role).' }),
    'irsa-role-arn': Flags.string({ description: 'For --auth irsa: the IAM role the job\'s service account maps to.' }),
    'host-network': Flags.boolean({ description: 'For --auth node: run on the host network, for nodes whose metadata hop limit blocks pods.' }),
    'all-namespaces': Flags.boolean({ char: 'A', description: 'Refresh every namespace, including ones created later.', exclusive: ['namespace'] }),
    'namespace-selector': Flags.string({ description: 'Refresh namespaces whose labels match (evaluated at every run).', exclusive: ['namespace'] }),
    'exclude-namespace': Flags.string({ multiple: true, description: 'Leave out namespaces matching this glob (repeatable).' }),
    registry: Flags.string({ multiple: true, description: 'ECR registry host (repeatable). Default: your account in --region.' }),
    account: Flags.string({ multiple: true, description: 'AWS account id whose registry in --region to use (repeatable).' }),
    'secret-name': Flags.string({ default: DEFAULT_SECRET_NAME, description: 'Name of the pull secret the job writes.' }),
    'service-account': Flags.string({ multiple: true, description: 'Service account the job attaches the secret to (repeatable). Default: default.', exclusive: ['no-service-account'] }),
    'no-service-account': Flags.boolean({ description: 'Attach the secret to no service account.' }),
    'role-arn': Flags.string({ description: 'A role the job assumes on top of its credentials.', helpGroup: 'AWS' }),
    'role-session-name': Flags.string({ description: 'Session name for --role-arn.', helpGroup: 'AWS', dependsOn: ['role-arn'] }),
    'external-id': Flags.string({ description: 'External id for --role-arn.', helpGroup: 'AWS', dependsOn: ['role-arn'] }),
    schedule: Flags.string({ default: DEFAULT_SCHEDULE, description: 'Cron schedule (UTC on most clusters). Must leave a margin before the 12-hour token expiry.' }),
    image: Flags.string({ description: `The job's image. Default: ${IMAGE_REPOSITORY}:<this version>.` }),
    wait: Flags.boolean({ default: true, allowNo: true, description: 'Run the job once now and wait for it.' }),
    timeout: Flags.integer({ default: 300, min: 1, description: 'Seconds to wait for the first run.' }),
    'dry-run': Flags.string({ options: ['none', 'client', 'server'], default: 'none', description: 'client: print the manifests, touch nothing; server: have the API server validate them.' }),
    output: Flags.string({ char: 'o', options: ['yaml', 'json'], description: 'Print the manifests on stdout.' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(InstallCron);
    const auth = flags.auth as import('../install/manifests.js').AuthMode;
    const dryRun = flags['dry-run'] as 'none' | 'client' | 'server';
    const { validateInstall } = await import('../install/plan.js');
    const warnings = validateInstall({ ...flags, auth });
    const { parseRegistry, registryFor, uniqueRegistries } = await import('../aws/registry.js');
    const registries = (flags.registry ?? []).map(parseRegistry);
    if (flags.account?.length && !flags.region) throw new UserError('UsageError', '--account needs --region', undefined, EXIT.usage);
    for (const account of flags.account ?? []) registries.push(registryFor(account, flags.region!));
    for (const w of warnings) warn(w);

    // Printing manifests for named namespaces needs no cluster at all.
    const targetsNamed = Boolean(flags.namespace?.length || flags['all-namespaces'] || flags['namespace-selector']);
    const { loadKubeConfig } = await import('../kube/config.js');
    const cluster = dryRun === 'client' && targetsNamed ? undefined : await loadKubeConfig(flags);

    const { resolveInstall } = await import('../install/install.js');
    const plan = await resolveInstall(flags, { auth, registries: uniqueRegistries(registries), currentNamespace: cluster?.namespace ?? 'default', version: this.config.version });

    const { buildManifests } = await import('../install/manifests.js');
    if (dryRun === 'client') {
      const objects = buildManifests(plan);
      const { printManifests } = await import('../install/install.js');
      printManifests(objects, (flags.output as 'yaml' | 'json') ?? 'yaml', plan.jobNamespace);
      if (auth === 'keys') note('The AWS secret key is not printed: set AWS_SECRET_ACCESS_KEY in the Secret from your secret store.');
      return;
    }

    const { install } = await import('../install/install.js');
    const ok = await install(cluster!.kc, plan, { dryRun, wait: flags.wait, timeoutSeconds: flags.timeout });
    if (flags.output) printData(flags.output as 'yaml' | 'json', buildManifests(plan));
    if (!ok) this.exit(EXIT.failure);
  }
}
