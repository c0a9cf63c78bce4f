import { Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base.js';
import { UserError, usageError } from '../cli/errors.js';
import { note } from '../cli/output.js';
import { DEFAULT_INSTALL_NAME } from '../names.js';

export default class Uninstall extends BaseCommand {
  static override summary = 'Remove what install-cron created; with --purge, the pull secrets too.';

  static override description = `Deletes every object labelled with the install's name: the CronJob and its Jobs, the ServiceAccount, ConfigMap, key Secret and RBAC. Pull secrets stay, so running workloads keep pulling until their tokens expire, unless --purge, which also deletes them and removes them from exactly the service accounts kubectl-ecr attached them to.`;

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --name ecr-refresh --purge',
  ];

  static override flags = {
    name: Flags.string({ default: DEFAULT_INSTALL_NAME, description: 'Name of the install to remove.' }),
    purge: Flags.boolean({ description: 'Also delete the pull secrets and detach them from the service accounts kubectl-ecr attached them to.' }),
    'dry-run': Flags.string({ options: ['none', 'server'], default: 'none', description: 'server: have the API server check the deletions without doing them.' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Uninstall);
    if (flags.namespace?.length) throw usageError('uninstall removes a whole install; -n does not apply', 'pick the install with --name, or re-run install-cron without that namespace to prune it');
    const { loadKubeConfig } = await import('../kube/config.js');
    const cluster = await loadKubeConfig(flags);
    const { uninstall } = await import('../install/uninstall.js');
    const dry = flags['dry-run'] === 'server';
    const removed = await uninstall(cluster.kc, flags.name, { purge: flags.purge, dryRun: dry ? 'All' : undefined });
    if (removed.length === 0) {
      throw new UserError('InstallNotFound', `no object is labelled with install "${flags.name}"`, 'check --name (kubectl get cronjobs -A -l app.kubernetes.io/managed-by=kubectl-ecr)');
    }
    for (const line of removed) note(`${line}${dry ? ' (server dry run)' : ''}`);
    note(`${removed.length} object(s) removed${dry ? ' (server dry run, nothing deleted)' : ''}.`);
  }
}
