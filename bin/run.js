#!/usr/bin/env node
// The oclif entry point, nothing else: commands load what they need when they run.
import { execute } from '@oclif/core';

// SHORTCOMING: AWS SDK releases after early January 2027 require Node 22; on Node 20 the SDK prints
// an eight-line warning to stderr on every run, which would bury kubectl-ecr's own one-line output.
// It is silenced here and the SDK stays at the versions in package-lock.json until the project moves
// to Node 22 (with @oclif/core 5 and @kubernetes/client-node 2, which need it too).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

await execute({ dir: import.meta.url });
