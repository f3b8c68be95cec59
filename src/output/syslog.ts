/**
 * Findings as RFC 5424 syslog messages over UDP (RFC 5426), one datagram per finding:
 *
 *   <83>1 2026-11-22T10:00:00.000Z web-1 sockeye 812 finding - {"@timestamp":...}
 *
 * PRI is the facility (default authpriv: findings name users and commands, and
 * authpriv's log is the one kept root-only) and the finding's severity; the message is
 * the finding's JSON, so a SIEM reading syslog gets the same document as JSON lines.
 *
 * Only UDP: Node's dgram has no unix datagram sockets, so /dev/log is out of reach
 * without a native module. Point it at the local daemon's UDP input (rsyslog `imudp`,
 * syslog-ng `network(transport("udp"))`) on 127.0.0.1. A receiver cuts datagrams larger
 * than its maximum message size (rsyslog: 8 KiB by default).
 */
import { createSocket, type Socket } from "node:dgram";
import { isIPv6, isIP } from "node:net";
import type { Finding } from "../engine/finding.js";
import type { Severity } from "../engine/rule.js";
import { LineOutput, type LineProgress, type QueuedLine } from "./line-output.js";
import { OutputError, describeError, encodeFinding } from "./output.js";

export const SYSLOG_FACILITIES = {
  user: 1,
  daemon: 3,
  auth: 4,
  authpriv: 10,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
} as const;

export type SyslogFacility = keyof typeof SYSLOG_FACILITIES;

export interface SyslogOutputOptions {
  /** An IP address (default 127.0.0.1); no DNS lookup happens per message. */
  host?: string;
  /** Default 514. */
  port?: number;
  /** Defaults to "syslog". */
  name?: string;
  /** Default "authpriv". */
  facility?: SyslogFacility;
  /** Bytes waiting for the socket before the newest messages are dropped (default 8 MiB). */
  maxBufferedBytes?: number;
}

/** RFC 5424 severities: crit, err, warning, notice. */
const SYSLOG_SEVERITY: Record<Severity, number> = { critical: 2, high: 3, medium: 4, low: 5 };

export class SyslogOutput extends LineOutput {
  private readonly host: string;
  private readonly port: number;
  private readonly facility: number;
  private socket: Socket | undefined;

  constructor(options: SyslogOutputOptions = {}) {
    super("syslog", options.name ?? "syslog", { maxBufferedBytes: options.maxBufferedBytes });
    this.host = options.host ?? "127.0.0.1";
    this.port = options.port ?? 514;
    const facility = options.facility ?? "authpriv";
    if (!(facility in SYSLOG_FACILITIES)) throw new RangeError(`unknown syslog facility ${JSON.stringify(facility)}`);
    this.facility = SYSLOG_FACILITIES[facility];
  }

  protected async acquire(): Promise<void> {
    if (isIP(this.host) === 0) throw new OutputError(this.name, `host must be an IP address, got ${JSON.stringify(this.host)}`);
    const socket = createSocket(isIPv6(this.host) ? "udp6" : "udp4");
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      // connect() fixes the destination once and lets the kernel report ICMP "port
      // unreachable" on later sends, which then count as write errors.
      socket.connect(this.port, this.host, () => {
        socket.off("error", reject);
        resolve();
      });
    }).catch((error: unknown) => {
      socket.close();
      throw new OutputError(this.name, `cannot reach ${this.host}:${this.port}: ${describeError(error)}`);
    });
    socket.on("error", (error) => {
      this.counters.lastError = describeError(error);
    });
    this.socket = socket;
  }

  protected async release(): Promise<void> {
    const socket = this.socket;
    this.socket = undefined;
    await new Promise<void>((resolve) => (socket === undefined ? resolve() : socket.close(() => resolve())));
  }

  protected formatLine(finding: Finding): string | undefined {
    const json = encodeFinding(finding, this.counters);
    if (json === undefined) return undefined;
    const pri = this.facility * 8 + (SYSLOG_SEVERITY[finding.rule.severity] ?? SYSLOG_SEVERITY.high);
    const host = headerField(finding.host.name, 255);
    return `<${pri}>1 ${headerField(finding["@timestamp"], 32)} ${host} sockeye ${process.pid} finding - ${json}`;
  }

  protected async deliver(lines: readonly QueuedLine[], progress: LineProgress): Promise<void> {
    for (const line of lines) {
      // One datagram each; one refused send (ICMP unreachable) must not cost the others.
      await new Promise<void>((resolve) =>
        this.socket!.send(line.text, (error) => {
          if (error) progress.failed(1, error);
          else progress.delivered(1);
          resolve();
        }),
      );
    }
  }
}

/** RFC 5424 header fields are printable US-ASCII without spaces, "-" when empty. */
function headerField(value: string, maxLength: number): string {
  const printable = value.replace(/[^\x21-\x7e]/g, "_").slice(0, maxLength);
  return printable === "" ? "-" : printable;
}
