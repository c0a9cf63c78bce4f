import { inspect } from 'node:util';

/**
 * A password or token that cannot leak by accident: printing, logging, JSON.stringify and
 * util.inspect all show "[redacted]". Only reveal() gives the value, and only the code that writes
 * the Kubernetes Secret calls it.
 */
export class SecretValue {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return '[redacted]';
  }

  toJSON(): string {
    return '[redacted]';
  }

  [inspect.custom](): string {
    return '[redacted]';
  }
}
