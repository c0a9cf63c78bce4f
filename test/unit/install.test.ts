import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SecretValue } from '../../src/aws/secret-value.js';
import { UserError } from '../../src/cli/errors.js';
import { buildManifests, iamPolicy, type InstallPlan } from '../../src/install/manifests.js';
import { checkSchedule } from '../../src/install/schedule.js';
import { parseSettings } from '../../src/refresh/settings.js';

function plan(over: Partial<InstallPlan> = {}, settings: Partial<InstallPlan['settings']> = {}): InstallPlan {
  return {
    name: 'ecr-refresh',
    jobNamespace: 'kubectl-ecr',
    image: 'ghcr.io/kubectl-ecr/kubectl-ecr:0.1.0',
    schedule: '0 */4 * * *',
    settings: { registries: ['123456789012.dkr.ecr.us-east-1.amazonaws.com'], namespaces: ['a', 'b'], secretName: 'ecr-registry', serviceAccounts: ['default'], ...settings },
    auth: { mode: 'irsa', irsaRoleArn: 'arn:aws:iam::123456789012:role/r' },
    ...over,
  };
}

const kinds = (p: InstallPlan) => buildManifests(p).map((o) => `${o.kind}${o.metadata.namespace ? `/${o.metadata.namespace}` : ''}`);

describe('install manifests', () => {
  it('gives each named namespace its own Role and RoleBinding, and no cluster RBAC', () => {
    assert.deepEqual(kinds(plan()), ['ServiceAccount/kubectl-ecr', 'ConfigMap/kubectl-ecr', 'Role/a', 'RoleBinding/a', 'Role/b', 'RoleBinding/b', 'CronJob/kubectl-ecr']);
  });

  it('uses a ClusterRole only when every or selected namespaces are targeted', () => {
    assert.deepEqual(kinds(plan({}, { namespaces: undefined, allNamespaces: true })), ['ServiceAccount/kubectl-ecr', 'ConfigMap/kubectl-ecr', 'ClusterRole', 'ClusterRoleBinding', 'CronJob/kubectl-ecr']);
    assert.ok(kinds(plan({}, { namespaces: undefined, namespaceSelector: 'team=a' })).includes('ClusterRole'));
  });

  it('limits the Role to the secret name and the named service accounts', () => {
    const role = buildManifests(plan()).find((o) => o.kind === 'Role') as unknown as { rules: Array<{ resources: string[]; resourceNames?: string[] }> };
    assert.deepEqual(role.rules.map((r) => [r.resources[0], r.resourceNames]), [['secrets', ['ecr-registry']], ['serviceaccounts', ['default']]]);
  });

  it('annotates the service account for IRSA, stores keys only in a Secret, redacted unless asked', () => {
    const sa = buildManifests(plan())[0];
    assert.equal(sa.metadata.annotations?.['eks.amazonaws.com/role-arn'], 'arn:aws:iam::123456789012:role/r');
    const keys = plan({ auth: { mode: 'keys', keys: { accessKeyId: 'AKIA', secretAccessKey: new SecretValue('s3cr3t') } } });
    const printed = JSON.stringify(buildManifests(keys));
    assert.ok(!printed.includes('s3cr3t'));
    const secret = buildManifests(keys, { revealKeys: true }).find((o) => o.kind === 'Secret') as unknown as { stringData: Record<string, string> };
    assert.equal(secret.stringData.AWS_SECRET_ACCESS_KEY, 's3cr3t');
    const cm = buildManifests(keys, { revealKeys: true }).find((o) => o.kind === 'ConfigMap');
    assert.ok(!JSON.stringify(cm).includes('s3cr3t') && !JSON.stringify(cm).includes('AKIA'));
  });

  it('writes settings the job\'s login reads back as they were meant', () => {
    const cm = buildManifests(plan()).find((o) => o.kind === 'ConfigMap') as unknown as { data: Record<string, string> };
    const s = parseSettings(cm.data['settings.yaml'], 'settings');
    assert.deepEqual(s, { registries: ['123456789012.dkr.ecr.us-east-1.amazonaws.com'], namespaces: ['a', 'b'], secretName: 'ecr-registry', serviceAccounts: ['default'], install: 'ecr-refresh' });
  });

  it('runs one job at a time, briefly, as a non-root restricted pod, off the host network', () => {
    const cj = buildManifests(plan()).find((o) => o.kind === 'CronJob') as unknown as { spec: any };
    assert.equal(cj.spec.concurrencyPolicy, 'Forbid');
    const pod = cj.spec.jobTemplate.spec.template.spec;
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(typeof pod.securityContext.runAsUser, 'number');
    assert.deepEqual(pod.containers[0].securityContext.capabilities.drop, ['ALL']);
    assert.equal(pod.hostNetwork, undefined);
    const node = buildManifests(plan({ auth: { mode: 'node', hostNetwork: true } })).find((o) => o.kind === 'CronJob') as unknown as { spec: any };
    assert.equal(node.spec.jobTemplate.spec.template.spec.hostNetwork, true);
  });

  it('asks IAM for the token permission, and AssumeRole only for a role the job assumes', () => {
    assert.deepEqual(iamPolicy(plan()), { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'ecr:GetAuthorizationToken', Resource: '*' }] });
    const withRole = iamPolicy(plan({}, { roleArn: 'arn:aws:iam::1:role/x' })) as { Statement: Array<{ Action: string }> };
    assert.deepEqual(withRole.Statement.map((s) => s.Action), ['ecr:GetAuthorizationToken', 'sts:AssumeRole']);
  });
});

describe('schedule checks', () => {
  const code = (s: string) => {
    try {
      checkSchedule(s);
      return 'ok';
    } catch (e) {
      return (e as UserError).message;
    }
  };

  it('accepts the default with two or more runs per token lifetime and no warning', () => {
    const c = checkSchedule('0 */4 * * *');
    assert.equal(c.longestGapHours, 4);
    assert.deepEqual(c.warnings, []);
  });

  it('refuses the classic typo that fires every minute', () => {
    assert.match(code('* */6 * * *'), /runs every minute/);
    assert.match(code('*/1 * * * *'), /runs every minute/);
  });

  it('refuses gaps that leave no margin before the 12-hour expiry, including uneven ones', () => {
    assert.match(code('0 0 * * *'), /24 hours/);
    assert.match(code('0 0,12 * * *'), /12 hours/);
    assert.match(code('0 1,2 * * *'), /23 hours/);
    assert.match(code('0 */4 * * 1-5'), /52 hours/, 'weekdays only leaves the weekend uncovered');
  });

  it('warns when only one run falls in some token lifetimes', () => {
    assert.equal(checkSchedule('0 */8 * * *').warnings.length, 1);
    assert.equal(checkSchedule('30 */6 * * *').warnings.length, 0);
  });

  it('refuses what is not a five-field schedule', () => {
    assert.match(code('0 0 */4 * * *'), /not a five-field/);
    assert.match(code('61 * * * *'), /not valid/);
    assert.equal(code('@hourly'), 'ok');
  });
});
