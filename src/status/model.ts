// What status gathers from the cluster, before any judgement. Plain data.

export interface LastRun {
  job: string;
  state: 'succeeded' | 'failed' | 'running';
  finishedAt?: string;
  reason?: string;
  logs?: string;
}

export interface InstallState {
  name: string;
  namespace: string;
  schedule: string;
  suspended: boolean;
  lastSchedule?: string;
  lastSuccess?: string;
  active: number;
  failedJobs: number;
  lastRun?: LastRun;
}

export interface Credential {
  username: string;
  password: string;
}

export interface SecretState {
  namespace: string;
  name: string;
  present: boolean;
  managed: boolean;
  hosts: string[];
  issuedAt?: string;
  expiresAt?: string;
  expirySource: 'recorded' | 'derived' | 'unknown';
  /** Service accounts whose imagePullSecrets name this secret. */
  referencedBy: string[];
  /** Service accounts the secret should be on (from the install's settings, or `default`). */
  expectedOn: string[];
  /** Credentials per host, for --verify only; never rendered. */
  credentials: Record<string, Credential>;
}

export interface PodSource {
  namespace: string;
  kind: string;
  name: string;
  images: string[];
  ownSecrets: string[];
  serviceAccount: string;
  serviceAccountSecrets: string[];
  /** Pods only: ErrImagePull / ImagePullBackOff and the kubelet's message. */
  waiting?: { reason: string; message?: string };
}

export interface VerifyResult {
  namespace: string;
  secret: string;
  host: string;
  result: 'accepted' | 'rejected' | 'unreachable';
  detail?: string;
}
