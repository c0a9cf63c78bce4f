import { Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base.js';
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
    const { loadKubeConfig } = await import('../kube/config.js');
    const cluster = await loadKubeConfig(flags);
    const { uninstall } = await import('../install/uninstall.js');
    const removed = await uninstall(cluster.kc, flags.name, { purge: flags.purge, dryRun: flags['dry-run'] === 'server' ? 'All' : undefined });
    for (const line of removed) note(line);
    note(removed.length === 0 ? `Nothing labelled with install "${flags.name}" was found.` : `${removed.length} object(s) removed${flags['dry-run'] === 'server' ? ' (server dry run, nothing deleted)' : ''}.`);
  }
}
