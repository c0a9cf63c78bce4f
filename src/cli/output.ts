// stdout is data, stderr is for people. Color only on a terminal and never with NO_COLOR.
import { stringify } from 'yaml';

export type DataFormat = 'json' | 'yaml';

export function useColor(stream: NodeJS.WriteStream = process.stderr): boolean {
  return Boolean(stream.isTTY) && !('NO_COLOR' in process.env) && process.env.TERM !== 'dumb';
}

const CODES = { red: 31, green: 32, yellow: 33, dim: 2, bold: 1 } as const;

export function paint(color: keyof typeof CODES, text: string, stream: NodeJS.WriteStream = process.stderr): string {
  return useColor(stream) ? `\u001b[${CODES[color]}m${text}\u001b[0m` : text;
}

export function note(message: string): void {
  process.stderr.write(`${message}\n`);
}

export function warn(message: string): void {
  process.stderr.write(`${paint('yellow', 'warning:')} ${message}\n`);
}

export function errorLine(message: string): void {
  process.stderr.write(`${paint('red', 'error:')} ${message}\n`);
}

/** Print objects as kubectl does: one object as is, several as a v1 List. */
export function printData(format: DataFormat, items: unknown[]): void {
  // Times as Kubernetes writes them (RFC 3339, whole seconds), not JavaScript's milliseconds.
  const plain = JSON.parse(
    JSON.stringify(items, function (this: Record<string, unknown>, key, value) {
      const raw = this[key];
      return raw instanceof Date ? raw.toISOString().replace(/\.\d{3}Z$/, 'Z') : value;
    }),
  ) as unknown[];
  const doc = plain.length === 1 ? plain[0] : { apiVersion: 'v1', kind: 'List', items: plain };
  process.stdout.write(format === 'json' ? `${JSON.stringify(doc, null, 2)}\n` : stringify(doc, { aliasDuplicateObjects: false }));
}
