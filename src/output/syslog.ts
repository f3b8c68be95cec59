/**
 * Findings as RFC 5424 syslog messages, one per finding:
 *
 *   <83>1 2026-11-22T10:00:00.000Z web-1 sockeye 812 finding - {"@timestamp":...}
 *
 * PRI is the facility (default authpriv: findings name users and commands, and
 * authpriv's log is the one kept root-only) and the finding's severity; the message is
 * the finding's JSON, so a SIEM reading syslog gets the same document as JSON lines.
 *
 * Transports:
 * - udp (RFC 5426): one datagram per finding. A receiver cuts datagrams larger than its
 *   maximum message size (rsyslog: 8 KiB by default).
 * - tcp (RFC 6587, octet counting: `<length> <message>`, so a message may hold any byte).
 * - tls (RFC 5425: the same framing inside TLS), the server checked against `caFile` (or
 *   the system's CAs), with a client certificate when `certFile`/`keyFile` are given.
 *
 * Over tcp and tls one connection carries everything; when it breaks (the server
 * restarted, a reset) the output reconnects with exponential backoff and jitter, and what
 * was queued meanwhile waits in the bounded line queue (past it: queue_full). A chunk the
 * kernel did not take whole is sent again on the next connection. Syslog has no
 * application-level acknowledgement, though: bytes the kernel took just before the server
 * died are lost without a sign, so these transports are best-effort, like udp but without
 * its silent loss on a busy network.
 *
 * Node's dgram has no unix datagram sockets, so /dev/log is out of reach without a native
 * module: point it at the local daemon's network input on 127.0.0.1.
 */
import { readFileSync } from "node:fs";
import type { Socket as DatagramSocket } from "node:dgram";
import { connect as tcpConnect, isIPv6, isIP, type Socket } from "node:net";
import type { Finding } from "../engine/finding.js";
import type { Severity } from "../engine/rule.js";
import { LineOutput, type LineProgress, type QueuedLine } from "./line-output.js";
import { OutputError, describeError, encodeFinding, sleep } from "./output.js";
import { EXIT_REFUSED, OptionError, SockeyeError } from "../errors.js";

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

export const SYSLOG_PROTOCOLS = ["udp", "tcp", "tls"] as const;
export type SyslogProtocol = (typeof SYSLOG_PROTOCOLS)[number];

export interface SyslogTlsOptions {
  /** PEM CA bundle the server's certificate must chain to (default: the system's CAs). */
  caFile?: string;
  /** PEM client certificate and its key, for servers that ask for one. */
  certFile?: string;
  keyFile?: string;
  /** The name the server's certificate must carry (default: the host, an IP address). */
  serverName?: string;
}

export interface SyslogReconnect {
  /** Delay before the first reconnection, before jitter (default 200 ms). */
  initialMs?: number;
  /** Ceiling of the delay (default 10 s). */
  maxMs?: number;
}

export interface SyslogOutputOptions {
  /** An IP address (default 127.0.0.1); no DNS lookup happens per message. */
  host?: string;
  /** Default 514 (udp, tcp) or 6514 (tls). */
  port?: number;
  /** Default "udp". */
  protocol?: SyslogProtocol;
  tls?: SyslogTlsOptions;
  reconnect?: SyslogReconnect;
  /** Connection attempts (TCP and TLS handshake) give up after this (default 10 s). */
  connectTimeoutMs?: number;
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
  private readonly protocol: SyslogProtocol;
  private readonly tlsOptions: SyslogTlsOptions;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly connectTimeoutMs: number;
  private datagrams: DatagramSocket | undefined;
  /** The open TCP or TLS connection; undefined until the first delivery and after it broke. */
  private stream: Socket | undefined;
  private tlsMaterial: { ca?: Buffer; cert?: Buffer; key?: Buffer } = {};

  constructor(options: SyslogOutputOptions = {}) {
    super("syslog", options.name ?? "syslog", { maxBufferedBytes: options.maxBufferedBytes });
    this.protocol = options.protocol ?? "udp";
    if (!SYSLOG_PROTOCOLS.includes(this.protocol)) throw new OptionError(`unknown syslog protocol ${JSON.stringify(this.protocol)}`);
    this.host = options.host ?? "127.0.0.1";
    this.port = options.port ?? (this.protocol === "tls" ? 6514 : 514);
    const facility = options.facility ?? "authpriv";
    if (!(facility in SYSLOG_FACILITIES)) throw new OptionError(`unknown syslog facility ${JSON.stringify(facility)}`);
    this.facility = SYSLOG_FACILITIES[facility];
    this.tlsOptions = options.tls ?? {};
    this.initialBackoffMs = options.reconnect?.initialMs ?? 200;
    this.maxBackoffMs = options.reconnect?.maxMs ?? 10_000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  }

  protected async acquire(): Promise<void> {
    if (isIP(this.host) === 0) throw new OutputError(this.name, `host must be an IP address, got ${JSON.stringify(this.host)}`);
    if (this.protocol !== "udp") return this.acquireStream();
    // dgram and tls are imported by the protocol that uses them: an import of node:tls reads
    // Node's ~140 bundled root certificates into the heap of every daemon, syslog or not.
    const { createSocket } = await import("node:dgram");
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
    this.datagrams = socket;
  }

  /**
   * Reads the TLS files (a missing or unreadable one fails the start). The server itself
   * may be down at start: the first delivery connects, and retries until it is up.
   */
  private acquireStream(): void {
    if (this.protocol !== "tls") {
      if (Object.keys(this.tlsOptions).length > 0) throw new OutputError(this.name, "TLS files are set but the protocol is not tls");
      return;
    }
    if ((this.tlsOptions.certFile === undefined) !== (this.tlsOptions.keyFile === undefined))
      throw new OutputError(this.name, "a client certificate needs both its certificate and key files");
    const read = (what: string, path: string | undefined): Buffer | undefined => {
      if (path === undefined) return undefined;
      try {
        return readFileSync(path);
      } catch (error) {
        throw new OutputError(this.name, `TLS ${what} ${path}: ${describeError(error)}`);
      }
    };
    const ca = read("CA file", this.tlsOptions.caFile);
    const cert = read("certificate file", this.tlsOptions.certFile);
    const key = read("key file", this.tlsOptions.keyFile);
    this.tlsMaterial = { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) };
  }

  protected async release(): Promise<void> {
    const datagrams = this.datagrams;
    this.datagrams = undefined;
    await new Promise<void>((resolve) => (datagrams === undefined ? resolve() : datagrams.close(() => resolve())));
    const stream = this.stream;
    this.stream = undefined;
    if (stream !== undefined && !stream.destroyed) {
      // end() sends what is buffered and a FIN; a server that never answers is cut off.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => stream.destroy(), 2_000);
        stream.once("close", () => (clearTimeout(timer), resolve()));
        stream.end();
      });
    }
  }

  protected formatLine(finding: Finding): string | undefined {
    const json = encodeFinding(finding, this.counters);
    if (json === undefined) return undefined;
    const pri = this.facility * 8 + (SYSLOG_SEVERITY[finding.rule.severity] ?? SYSLOG_SEVERITY.high);
    const host = headerField(finding.host.name, 255);
    return `<${pri}>1 ${headerField(finding["@timestamp"], 32)} ${host} sockeye ${process.pid} finding - ${json}`;
  }

  protected async deliver(lines: readonly QueuedLine[], progress: LineProgress, signal: AbortSignal): Promise<void> {
    if (this.protocol !== "udp") return this.deliverStream(lines, progress, signal);
    for (const line of lines) {
      // One datagram each; one refused send (ICMP unreachable) must not cost the others.
      await new Promise<void>((resolve) =>
        this.datagrams!.send(line.text, (error) => {
          if (error) progress.failed(1, error);
          else progress.delivered(1);
          resolve();
        }),
      );
    }
  }

  /**
   * The whole chunk in one write, on the open connection or a new one. Until the kernel has
   * taken all of it the chunk is sent again after a backoff, on a new connection, until it
   * goes or a flush gives up on it (the queue counts it as flush_timeout then).
   */
  private async deliverStream(lines: readonly QueuedLine[], progress: LineProgress, signal: AbortSignal): Promise<void> {
    const framed = lines.map((line) => `${line.bytes} ${line.text}`).join("");
    for (let failures = 0; !signal.aborted; ) {
      try {
        const stream = this.stream ?? (await this.connectStream());
        await new Promise<void>((resolve, reject) => stream.write(framed, (error) => (error ? reject(error) : resolve())));
        progress.delivered(lines.length);
        return;
      } catch (error) {
        this.counters.lastError = describeError(error);
        this.stream?.destroy();
        this.stream = undefined;
      }
      failures++;
      this.counters.retries++;
      await sleep(this.backoffMs(failures), signal);
    }
  }

  /** Exponential with "equal jitter": a fleet reconnecting after a server restart spreads out. */
  private backoffMs(failures: number): number {
    const exponential = Math.min(this.maxBackoffMs, this.initialBackoffMs * 2 ** (failures - 1));
    return exponential / 2 + Math.random() * (exponential / 2);
  }

  private async connectStream(): Promise<Socket> {
    const stream =
      this.protocol === "tls"
        ? (await import("node:tls")).connect({
            host: this.host,
            port: this.port,
            ...this.tlsMaterial,
            // Without a name, Node checks the certificate's IP addresses against the host.
            ...(this.tlsOptions.serverName !== undefined ? { servername: this.tlsOptions.serverName } : {}),
          })
        : tcpConnect({ host: this.host, port: this.port });
    const ready = this.protocol === "tls" ? "secureConnect" : "connect";
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => stream.destroy(new SockeyeError(`no connection within ${this.connectTimeoutMs} ms`, "SOCKEYE_OUTPUT_DELIVERY", EXIT_REFUSED)), this.connectTimeoutMs);
      stream.once("error", (error: Error) => (clearTimeout(timer), reject(error)));
      stream.once(ready, () => (clearTimeout(timer), resolve()));
    });
    stream.removeAllListeners("error");
    stream.setNoDelay(true);
    stream.setKeepAlive(true, 30_000);
    // A syslog server sends nothing; reading anyway is how its close (FIN) or reset is seen
    // at once, instead of at the next write, which the kernel would still take and lose.
    stream.on("data", () => {});
    const broken = (error?: Error) => {
      if (error !== undefined) this.counters.lastError = describeError(error);
      if (this.stream === stream) this.stream = undefined;
      stream.destroy();
    };
    stream.on("error", broken);
    stream.on("end", () => broken(new SockeyeError(`${this.host}:${this.port} closed the connection`, "SOCKEYE_OUTPUT_DELIVERY", EXIT_REFUSED)));
    stream.on("close", () => broken());
    this.stream = stream;
    return stream;
  }
}

/** RFC 5424 header fields are printable US-ASCII without spaces, "-" when empty. */
function headerField(value: string, maxLength: number): string {
  const printable = value.replace(/[^\x21-\x7e]/g, "_").slice(0, maxLength);
  return printable === "" ? "-" : printable;
}
