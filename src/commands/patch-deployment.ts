import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base.js';
import { EXIT, UserError, usageError } from '../cli/errors.js';
import { note, printData, warn } from '../cli/output.js';
import { DEFAULT_SECRET_NAME, validSecretName } from '../names.js';

export default class PatchDeployment extends BaseCommand {
  static override summary = 'Point workloads at the pull secret, and optionally at ECR images.';

  static override description = `Adds the pull secret to each workload's pod template, keeping its other pull secrets (and, when the template had none, carrying over its service account's, which the pod would otherwise lose). With --image or --registry, moves images to ECR in containers and init containers alike. Writes nothing when nothing changes, so no rollout starts for nothing. Deployments by default; statefulset/NAME, daemonset/NAME and cronjob/NAME as kubectl takes them.`;

  static override strict = false;

  static override args = {
    workload: Args.string({ description: 'NAME or KIND/NAME (deployment, statefulset, daemonset, cronjob); several allowed.' }),
  };

  static override examples = [
    '<%= config.bin %> <%= command.id %> web -n shop',
    '<%= config.bin %> <%= command.id %> statefulset/db daemonset/agent -n infra',
    { description: 'Move every image of the matching Deployments to ECR, keeping paths, tags and digests', command: '<%= config.bin %> <%= command.id %> -l tier=web -n shop --registry 123456789012.dkr.ecr.eu-west-1.amazonaws.com' },
    { description: 'One container to a new image, shown as a diff first', command: '<%= config.bin %> <%= command.id %> web --image app=123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:1.4.2 --dry-run=client' },
  ];

  static override flags = {
    selector: Flags.string({ char: 'l', description: 'Patch the workloads whose labels match (with --kind).', exclusive: ['all'] }),
    all: Flags.boolean({ description: 'Patch every workload of --kind in the namespace.' }),
    kind: Flags.string({ multiple: true, default: ['deployment'], description: 'Kinds for --selector and --all: deployment, statefulset, daemonset, cronjob (repeatable).' }),
    'secret-name': Flags.string({ default: DEFAULT_SECRET_NAME, description: 'The pull secret to add.' }),
    image: Flags.string({ multiple: true, description: 'CONTAINER=REPOSITORY:TAG (or @DIGEST) for one container (repeatable); a repository without a registry takes --registry.' }),
    registry: Flags.string({ description: 'Move every image to this ECR registry host, keeping repository paths, tags and digests.' }),
    'image-pull-policy': Flags.string({ options: ['Always', 'IfNotPresent', 'Never'], description: 'Set every container\'s imagePullPolicy.' }),
    'verify-image': Flags.boolean({ description: 'Check in ECR that each resulting ECR image exists before writing.' }),
    wait: Flags.boolean({ description: 'Follow each rollout until it is done or fails, like kubectl rollout status.' }),
    timeout: Flags.integer({ default: 300, min: 1, description: 'Seconds to wait with --wait.' }),
    'dry-run': Flags.string({ options: ['none', 'client', 'server'], default: 'none', description: 'client: show the change as a diff (or the object with -o); server: have the API server check it.' }),
    output: Flags.string({ char: 'o', options: ['json', 'yaml'], description: 'Print the patched objects on stdout.' }),
  };

  async run(): Promise<void> {
    const { flags, argv } = await this.parse(PatchDeployment);
    const dryRun = flags['dry-run'] as 'none' | 'client' | 'server';
    const { kindOf } = await import('../workloads/template.js');
    const { parseImageOverride } = await import('../workloads/image-ref.js');
    const { parseRegistry } = await import('../aws/registry.js');

    // Everything checked before the cluster is asked anything.
    if ((flags.namespace?.length ?? 0) > 1) throw usageError('patch-deployment acts in one namespace; pass -n once');
    const names = argv as string[];
    if (names.length === 0 && !flags.selector && !flags.all) throw usageError('name a workload, or pass -l SELECTOR or --all');
    if (names.length > 0 && (flags.selector || flags.all)) throw usageError('workload names cannot be combined with -l or --all');
    const targets = names.map((arg) => {
      const [kind, name] = arg.includes('/') ? arg.split('/', 2) : ['deployment', arg];
      const k = kindOf(kind);
      if (!k || !name) throw usageError(`"${arg}" is not a workload`, 'use NAME or KIND/NAME with KIND deployment, statefulset, daemonset or cronjob');
      return { kind: k, name };
    });
    const kinds = flags.kind.flatMap((k) => k.split(',')).map((k) => kindOf(k.trim()) ?? (() => { throw usageError(`--kind "${k}" is not deployment, statefulset, daemonset or cronjob`); })());
    const name = flags['secret-name'];
    if (!validSecretName(name)) {
      throw usageError(`--secret-name "${name}" is not a valid Secret name`, 'use lower-case letters, digits, "-" and "."');
    }
    const { validateSelector } = await import('../kube/namespaces.js');
    validateSelector('-l', flags.selector);
    const registry = flags.registry ? parseRegistry(flags.registry).host : undefined;
    const images = (flags.image ?? []).map((v) => parseImageOverride(v, registry));

    const { loadKubeConfig } = await import('../kube/config.js');
    const cluster = await loadKubeConfig(flags);
    const namespace = flags.namespace?.[0] ?? cluster.namespace;
    const { applyKubeProxy } = await import('../net/proxy.js');
    applyKubeProxy(cluster.kc);
    const { clusterError } = await import('../kube/api.js');
    const fail = (err: unknown) => {
      throw clusterError(cluster.kc.getCurrentCluster()?.server ?? '', err) ?? err;
    };

    const work = await import('../workloads/patch.js');
    if (!(await work.namespaceExists(cluster.kc, namespace).catch(fail))) {
      throw new UserError('NamespaceNotFound', `namespace "${namespace}" does not exist`, 'check -n');
    }
    const hosts = await work.secretHosts(cluster.kc, namespace, flags['secret-name']).catch(fail);
    if (hosts === undefined) {
      warn(`secret/${flags['secret-name']} does not exist in ${namespace}; pods will not pull until it does: kubectl ecr login -n ${namespace}`);
    } else if (hosts && registry && !hosts.includes(registry)) {
      warn(`secret/${flags['secret-name']} has no entry for ${registry}; pods will not pull until it does: kubectl ecr login -n ${namespace} --registry ${registry}`);
    }
    const found = await work.findWorkloads(cluster.kc, namespace, { targets, selector: flags.selector, all: flags.all, kinds }).catch(fail);
    if (found.length === 0) note(`No ${kinds.join(' or ')} matched in ${namespace}.`);

    const change = { secretName: flags['secret-name'], images, registry, pullPolicy: flags['image-pull-policy'] };
    const results = [];
    for (const w of found) {
      if ('outcome' in w) {
        results.push(w);
        continue;
      }
      if (flags['verify-image']) {
        const missing = await this.missingImages(w, change, flags);
        if (missing.length) {
          results.push({ ref: `${w.kind.toLowerCase()}/${w.metadata.name}`, outcome: 'failed' as const, changes: [], error: `not in ECR: ${missing.join(', ')}` });
          continue;
        }
      }
      results.push(await work.patchWorkload(cluster.kc, w, change, dryRun));
    }

    for (const r of results) {
      const suffix = dryRun === 'none' ? '' : ` (dry run: ${dryRun})`;
      if (r.outcome === 'failed') note(`${r.ref}: failed: ${r.error}`);
      else note(`${r.ref} ${r.outcome}${r.changes.length ? `: ${r.changes.join('; ')}` : ''}${suffix}`);
      if (dryRun === 'client' && !flags.output && r.diff) process.stdout.write(r.diff);
    }
    if (flags.output) printData(flags.output as 'json' | 'yaml', results.flatMap((r) => (r.object ? [r.object] : [])));

    let failed = results.filter((r) => r.outcome === 'failed').length;
    if (flags.wait && dryRun === 'none') {
      for (const r of results.filter((x) => x.outcome === 'patched' && x.object)) {
        const end = await work.waitForRollout(cluster.kc, r.object!, flags.timeout * 1000);
        if (end !== 'none') note(`${r.ref}: rollout ${end === 'done' ? 'complete' : end === 'failed' ? 'failed (progress deadline exceeded)' : `not done after ${flags.timeout}s`}`);
        if (end === 'failed' || end === 'timeout') failed++;
      }
    }
    if (failed > 0) this.exit(EXIT.failure);
  }

  private async missingImages(w: import('../workloads/template.js').Workload, change: Omit<import('../workloads/template.js').TemplateChange, 'serviceAccountSecrets'>, flags: { profile?: string; region?: string }): Promise<string[]> {
    const { changeTemplate, podSpec } = await import('../workloads/template.js');
    const { parseImage } = await import('../workloads/image-ref.js');
    const { parseRegistry } = await import('../aws/registry.js');
    const { openSession } = await import('../aws/session.js');
    const { imageExists } = await import('../aws/images.js');
    const spec = podSpec(changeTemplate(w, { ...change, serviceAccountSecrets: [] }).object);
    const session = await openSession({ profile: flags.profile, region: flags.region });
    const missing: string[] = [];
    for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
      const ref = c.image ? parseImage(c.image) : undefined;
      if (!ref?.registry) continue;
      let registry;
      try {
        registry = parseRegistry(ref.registry);
      } catch {
        continue; // not an ECR image: nothing to verify
      }
      if (!(await imageExists(session, registry, ref.path, ref))) missing.push(c.image!);
    }
    return missing;
  }
}
