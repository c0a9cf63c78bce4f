// Is a CronJob schedule fit to keep 12-hour ECR tokens fresh? Pure: parse with cron-parser, walk a
// week of runs, and judge the longest gap between them.
import { CronExpressionParser } from 'cron-parser';
import { usageError } from '../cli/errors.js';

export const TOKEN_LIFETIME_HOURS = 12;
/** Time a refresh needs before the old token runs out: a failed run, its retries, a slow start. */
export const SAFETY_MARGIN_HOURS = 1;
export const DEFAULT_SCHEDULE = '0 */4 * * *';

const MACROS = new Set(['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly']);

export interface ScheduleCheck {
  /** The longest time between two runs, in hours, over a week. */
  longestGapHours: number;
  /** Runs that fall within one token's lifetime at the worst point. */
  runsPerTokenLifetime: number;
  warnings: string[];
}

/** Throws a usage error for a schedule that cannot keep tokens fresh; returns warnings otherwise. */
export function checkSchedule(schedule: string, from = new Date('2026-01-05T00:00:00Z')): ScheduleCheck {
  const expr = schedule.trim();
  const fields = expr.split(/\s+/);
  if (!(fields.length === 5 || (fields.length === 1 && MACROS.has(expr)))) {
    throw usageError(`--schedule "${schedule}" is not a five-field cron schedule`, 'write MINUTE HOUR DAY MONTH WEEKDAY, e.g. "0 */4 * * *"');
  }
  let runs: Date[];
  try {
    const it = CronExpressionParser.parse(expr, { currentDate: from, tz: 'UTC' });
    const end = from.getTime() + 7 * 24 * 3600_000;
    runs = [];
    for (let next = it.next().toDate(); next.getTime() <= end && runs.length < 20_000; next = it.next().toDate()) runs.push(next);
  } catch (err) {
    throw usageError(`--schedule "${schedule}" is not valid: ${(err as Error).message}`, 'e.g. "0 */4 * * *" runs every 4 hours');
  }
  if (runs.length >= 2 && runs[1].getTime() - runs[0].getTime() <= 60_000) {
    throw usageError(
      `--schedule "${schedule}" runs every minute (its minute field is "${fields[0]}")`,
      `pick a minute, e.g. "0 ${fields[1] ?? '*/4'} * * *"`,
    );
  }
  const gaps = runs.slice(1).map((r, i) => r.getTime() - runs[i].getTime());
  // Fewer than two runs a week: the gap wraps past the week we looked at.
  const longest = gaps.length > 0 ? Math.max(...gaps) : 7 * 24 * 3600_000;
  const longestGapHours = longest / 3600_000;
  if (longestGapHours > TOKEN_LIFETIME_HOURS - SAFETY_MARGIN_HOURS) {
    throw usageError(
      `--schedule "${schedule}" leaves up to ${fmt(longestGapHours)} hours between runs, but ECR tokens last ${TOKEN_LIFETIME_HOURS}`,
      `run at least every ${TOKEN_LIFETIME_HOURS - SAFETY_MARGIN_HOURS} hours; every 4 to 6 is usual`,
    );
  }
  const runsPerTokenLifetime = Math.floor(TOKEN_LIFETIME_HOURS / longestGapHours);
  const warnings =
    runsPerTokenLifetime < 2
      ? [`schedule "${schedule}" runs only once in some ${TOKEN_LIFETIME_HOURS}-hour windows: one failed run and pulls fail when the token expires; every 4 to 6 hours gives a second chance`]
      : [];
  return { longestGapHours, runsPerTokenLifetime, warnings };
}

function fmt(hours: number): string {
  return Number.isInteger(hours) ? String(hours) : hours.toFixed(1);
}
