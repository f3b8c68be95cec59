/**
 * The daemon's log: one JSON object per line on stderr (stdout carries findings), so a
 * journal or a log shipper can parse every line.
 */
function line(level: "info" | "warn", message: string, details: Record<string, unknown>): void {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, message, ...details })}\n`);
}

export function log(message: string, details: Record<string, unknown> = {}): void {
  line("info", message, details);
}

export function warn(message: string, details: Record<string, unknown> = {}): void {
  line("warn", message, details);
}

/** The same two, as the logger the engine and the rule catalog take. */
export const daemonLogger = { info: log, warn };
