const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/**
 * Parses a duration such as `30s`, `15m`, `12h`, `7d` or a bare number of seconds.
 * Returns whole seconds, or `undefined` when the text is not a duration.
 * @example parseDuration('15m') // 900
 */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d{1,10})([smhd]?)$/.exec(text.trim());
  if (!match) return undefined;
  const seconds = Number(match[1]) * UNIT_SECONDS[match[2] || 's']!;
  return Number.isSafeInteger(seconds) ? seconds : undefined;
}
