/**
 * A readable one-line-per-finding format for a person watching a terminal:
 *
 *   2026-11-22T10:00:00.000Z HIGH     Process standard input/output over socket detected  bash[4242] ← sshd[4000]  uid=1000  → 10.0.0.66:4444  bash -i
 *
 * Every text taken from the finding has its control, bidi and line-separator characters
 * escaped: process names and arguments are chosen by whoever runs the process, and an
 * attacker's escape sequences or reordering must not reach (or rewrite) the analyst's terminal.
 */
import type { Finding } from "../engine/finding.js";
import type { Severity } from "../engine/rule.js";
import { StreamOutput, type StreamOutputOptions } from "./stream.js";

export interface PrettyFormatOptions {
  /** ANSI colours on or off. */
  color: boolean;
  /** Characters of command line shown before it is cut with "…" (default 120). */
  maxCommandLine?: number;
}

export interface PrettyOutputOptions extends StreamOutputOptions {
  /** "auto" (default): colour when the stream is a TTY, NO_COLOR is unset and TERM is not dumb. */
  color?: "auto" | "always" | "never";
  maxCommandLine?: number;
  /** Where NO_COLOR and TERM are read; defaults to process.env. */
  env?: Readonly<Record<string, string | undefined>>;
}

const SEVERITY_COLOR: Record<Severity, string> = {
  low: "36", // cyan
  medium: "33", // yellow
  high: "31", // red
  critical: "1;37;41", // bold white on red
};

const DEFAULT_MAX_COMMAND_LINE = 120;

export function formatPretty(finding: Finding, options: PrettyFormatOptions): string {
  const paint = (code: string, text: string) => (options.color ? `\u001b[${code}m${text}\u001b[0m` : text);
  const { process: proc, rule } = finding;
  const head = [
    paint("2", safe(finding["@timestamp"])),
    paint(SEVERITY_COLOR[rule.severity] ?? "0", safe(rule.severity.toUpperCase()).padEnd(8)),
    paint("1", safe(rule.name)),
  ].join(" ");
  const groups = [
    head,
    `${safe(proc.name ?? "?")}[${proc.pid}] ← ${safe(proc.parent.name ?? "?")}[${proc.parent.pid}]`,
    `uid=${safe(finding.user.id)}`,
  ];
  const destination = endpoint(finding["destination"]);
  if (destination !== undefined) groups.push(`→ ${paint("1", destination)}`);
  const commandLine = proc.command_line ?? proc.args?.join(" ");
  if (commandLine !== undefined && commandLine !== "") {
    groups.push(truncate(safe(commandLine), options.maxCommandLine ?? DEFAULT_MAX_COMMAND_LINE));
  }
  return groups.join("  ");
}

export function wantsColor(stream: { isTTY?: boolean }, mode: PrettyOutputOptions["color"], env: PrettyOutputOptions["env"]): boolean {
  if (mode === "always") return true;
  if (mode === "never") return false;
  // https://no-color.org: present and not empty disables colour.
  const noColor = env?.["NO_COLOR"];
  return stream.isTTY === true && (noColor === undefined || noColor === "") && env?.["TERM"] !== "dumb";
}

export class PrettyOutput extends StreamOutput {
  constructor(options: PrettyOutputOptions = {}) {
    const stream = options.stream ?? process.stdout;
    const format: PrettyFormatOptions = {
      color: wantsColor(stream as { isTTY?: boolean }, options.color ?? "auto", options.env ?? process.env),
      ...(options.maxCommandLine !== undefined ? { maxCommandLine: options.maxCommandLine } : {}),
    };
    super("pretty", (finding) => formatPretty(finding, format), { ...options, stream });
  }
}

/** `ip:port`, `[ipv6]:port`, or undefined when the finding has no destination. */
function endpoint(destination: unknown): string | undefined {
  if (typeof destination !== "object" || destination === null) return undefined;
  const { ip, port } = destination as { ip?: unknown; port?: unknown };
  if (typeof ip !== "string") return undefined;
  const host = ip.includes(":") ? `[${safe(ip)}]` : safe(ip);
  return typeof port === "number" || typeof port === "string" ? `${host}:${safe(String(port))}` : host;
}

/**
 * What must not reach the terminal as itself: C0, DEL and C1 controls (escape sequences);
 * bidi marks, embeddings, overrides and isolates (U+061C, U+200E/F, U+202A-E, U+2066-9),
 * which reorder what follows ("evil\u202Eexe.txt" reads "eviltxt.exe"); and the line and
 * paragraph separators U+2028/9, which split the line.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

function safe(text: string): string {
  // Finding fields carry attacker-chosen text: escaped as \xNN or \uNNNN.
  return text.replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}
