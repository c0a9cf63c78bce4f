import { Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base.js';
import { EXIT, UserError } from '../cli/errors.js';
import { note, paint, printData } from '../cli/output.js';

export default class Status extends BaseCommand {
  static override summary = 'Can workloads pull from ECR now, and until when? Exit 0 healthy, 1 unhealthy, 3 could not check.';

  static override description = `Shows each install (schedule, last runs, failures with the pod's reason), the pull secret in each target namespace (registries, expiry, which service accounts reference it), and every workload and pod whose images come from ECR, following the path Kubernetes takes: the pod's own pull secrets or else its service account's, an auths entry for exactly the image's host, and an unexpired token. --verify asks each registry whether the stored credentials are accepted.`;

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> -n shop --verify',
    { description: 'In a script or a monitor', command: '<%= config.bin %> <%= command.id %> -A -o json > status.json || alert "image pulls at risk"' },
  ];

  static override flags = {
    'all-namespaces': Flags.boolean({ char: 'A', description: 'Check every namespace.', exclusive: ['namespace'] }),
    name: Flags.string({ description: 'Only this install.' }),
    'secret-name': Flags.string({ description: 'The pull secret to look for. Default: the install\'s, else ecr-registry.' }),
    verify: Flags.boolean({ description: 'Ask each registry whether the stored credentials are accepted.' }),
    output: Flags.string({ char: 'o', options: ['wide', 'json', 'yaml'], description: 'Output format.' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Status);
    const { loadKubeConfig } = await import('../kube/config.js');
    const cluster = await loadKubeConfig(flags).catch((err) => {
      // Scripts read 1 as "pulls will fail": not knowing is 3.
      if (err instanceof UserError) throw new UserError(err.code, err.message, err.hint, EXIT.cannotCheck);
      throw err;
    });
    const { applyKubeProxy } = await import('../net/proxy.js');
    applyKubeProxy(cluster.kc);

    const { gather } = await import('../status/gather.js');
    const { describeFailure } = await import('../kube/api.js');
    const data = await gather(cluster.kc, { namespaces: flags.namespace, all: flags['all-namespaces'], install: flags.name, secretName: flags['secret-name'], current: cluster.namespace }).catch((err) => {
      throw new UserError('CannotCheck', `cannot read the cluster's state: ${describeFailure(err)}`, 'check --context, the API server, and your rights to list secrets, jobs and workloads', EXIT.cannotCheck, { cause: err });
    });

    if (flags.name && data.installs.length === 0 && !data.installsHidden) {
      throw new UserError('InstallNotFound', `no kubectl-ecr install named "${flags.name}"`, 'list them with kubectl get cronjobs -A -l app.kubernetes.io/managed-by=kubectl-ecr');
    }
    if (data.installsHidden) note('Not allowed to list CronJobs across the cluster: installs are not shown.');
    const { judgeInstall, judgeSecret, judgeWorkload, overall } = await import('../status/judge.js');
    const now = Date.now();
    const bySecret = new Map(data.secrets.map((s) => [`${s.namespace}/${s.name}`, s]));
    const findings = [
      ...data.installs.map(judgeInstall),
      ...data.secrets.filter((s) => s.expectedOn.length > 0 || !s.present).map((s) => judgeSecret(s, now)),
      ...data.workloads.map((w) => judgeWorkload(w, bySecret, now)),
    ];
    const verified = flags.verify ? await (await import('../status/verify.js')).verifySecrets(data.secrets) : undefined;
    for (const v of verified ?? []) {
      if (v.result !== 'rejected') continue;
      const message = `${v.host} rejected the stored credentials`;
      const row = findings.find((f) => f.kind === 'secret' && f.namespace === v.namespace && f.subject === v.secret);
      if (row) Object.assign(row, { severity: 'error', message });
      else findings.push({ kind: 'secret', namespace: v.namespace, subject: v.secret, severity: 'error', message });
      // Workloads that pull through that secret from that host cannot pull either.
      for (const w of findings.filter((f) => f.kind === 'workload' && f.namespace === v.namespace && f.severity === 'ok')) {
        const src = data.workloads.find((x) => x.namespace === w.namespace && `${x.kind.toLowerCase()}/${x.name}` === w.subject);
        const secrets = src ? (src.ownSecrets.length ? src.ownSecrets : src.serviceAccountSecrets) : [];
        if (src && secrets.includes(v.secret) && src.images.some((i) => i.startsWith(`${v.host}/`))) Object.assign(w, { severity: 'error', message: `cannot pull: ${message}` });
      }
    }
    const verdict = overall(findings);

    if (flags.output === 'json' || flags.output === 'yaml') {
      const secrets = data.secrets.map(({ credentials: _hidden, ...s }) => s);
      printData(flags.output, [{ status: verdict, installs: data.installs, secrets, findings, ...(verified ? { verify: verified } : {}) }]);
    } else {
      const { renderStatus } = await import('../status/render.js');
      process.stdout.write(renderStatus(data, findings, verified, flags.output === 'wide', now));
      if (data.installs.length === 0 && !flags.name) note('No kubectl-ecr install found; checked the secret in the chosen namespaces (kubectl ecr install-cron adds a refresher).');
      const problems = findings.filter((f) => f.severity !== 'ok' && f.kind !== 'workload');
      for (const p of problems) note(`${p.severity === 'error' ? paint('red', 'error') : paint('yellow', 'warning')}: ${p.kind === 'install' ? 'install' : 'secret'} ${p.namespace}/${p.subject}: ${p.message}`);
      const run = data.installs.find((i) => i.lastRun?.logs);
      if (run?.lastRun?.logs) note(`Last log lines of job/${run.lastRun.job}:\n${run.lastRun.logs.split('\n').map((l) => `  ${l}`).join('\n')}`);
      note(verdict === 'ok' ? 'Healthy.' : verdict === 'warning' ? 'Healthy, with warnings.' : 'Unhealthy: some pulls from ECR will fail.');
    }
    if (verdict === 'error') this.exit(EXIT.failure);
  }
}
