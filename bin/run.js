#!/usr/bin/env node
// The oclif entry point, nothing else: commands load what they need when they run.
import { execute } from '@oclif/core';

await execute({ dir: import.meta.url });
