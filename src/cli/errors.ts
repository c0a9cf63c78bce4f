// Errors a user can act on. Each has a stable code (tests and scripts match on it, not on the
// wording), a one-line message saying what failed, and a hint saying what to do.

export const EXIT = { ok: 0, failure: 1, usage: 2, cannotCheck: 3 } as const;

export class UserError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly hint?: string,
    readonly exitCode: number = EXIT.failure,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = code;
  }

  /** The single line printed on stderr. */
  line(): string {
    return this.hint ? `${this.message}; ${this.hint}` : this.message;
  }
}

export function usageError(message: string, hint?: string): UserError {
  return new UserError('UsageError', message, hint, EXIT.usage);
}

/** Wrap a lower-level failure with a short phrase saying what was being done. */
export function wrap(phrase: string, err: unknown): Error {
  if (err instanceof UserError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new Error(`${phrase}: ${message}`, { cause: err });
}
