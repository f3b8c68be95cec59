/**
 * Findings to a NATS JetStream stream, one message each on `sockeye.findings.<host id>`,
 * through the on-disk spool: a finding leaves the spool only once the stream's PubAck for it
 * came back, and each message carries `Nats-Msg-Id: <event.id>`, so one sent again after a
 * lost ack or a restart is dropped by the stream as a duplicate.
 *
 * That deduplication holds within the stream's `duplicate_window`. A finding is re-sent at
 * most the spool's maximum age after it was spooled (older ones are dropped unsent), so a
 * window at least that long makes delivery exactly-once; the stream this output creates
 * gets such a window, and a shorter window on an existing stream is reported at open.
 *
 * Messages go one at a time, each after the previous one's ack: a failed publish is retried
 * before anything after it, so the stream holds each host's findings in the order found.
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import type { NatsConnection, NodeConnectionOptions } from "@nats-io/transport-node";
import type { JetStreamClient } from "@nats-io/jetstream";

type NatsLibs = { nats: typeof import("@nats-io/transport-node"); js: typeof import("@nats-io/jetstream") };
let natsLibs: Promise<NatsLibs> | undefined;

/** The NATS client, loaded on first use: a daemon without a NATS output does not carry it (several MB of RSS). */
function loadNats(): Promise<NatsLibs> {
  natsLibs ??= Promise.all([import("@nats-io/transport-node"), import("@nats-io/jetstream")]).then(([nats, js]) => ({ nats, js }));
  return natsLibs;
}
import { OutputError, describeError } from "./output.js";
import { SpooledOutput, type SpooledFinding } from "./spooled-output.js";
import { DEFAULT_SPOOL_DIR, DEFAULT_SPOOL_MAX_AGE_MS, type SpoolOptions } from "./spool.js";

export interface NatsOutputOptions {
  /** Defaults to "nats". */
  name?: string;
  /** Server URLs (default nats://127.0.0.1:4222); tls:// for TLS. */
  servers?: string[];
  /** The stream (default SOCKEYE_FINDINGS). */
  stream?: string;
  /** Subjects are `<prefix>.<host id>` (default sockeye.findings). */
  subjectPrefix?: string;
  /** The last subject token (default: the host name, dots and wildcards made "_"). */
  hostId?: string;
  /** Create the stream (file storage, subjects `<prefix>.>`) when it is missing (default true). */
  createStream?: boolean;
  /** A NATS credentials file (JWT and NKey seed). */
  credsFile?: string;
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** How long to wait for each PubAck (default 5 s). */
  ackTimeoutMs?: number;
  spool?: SpoolOptions;
  /** Told once per connection when the stream's duplicate window is shorter than the spool's maximum age. */
  onWarning?: (message: string) => void;
}

const STREAM_NOT_FOUND = 10059;

/** A subject token: no dots (token separators), wildcards, spaces or control characters. */
export function subjectToken(value: string): string {
  const token = value.replace(/[^A-Za-z0-9_-]/g, "_");
  return token === "" ? "_" : token;
}

export class NatsOutput extends SpooledOutput {
  private readonly options: NatsOutputOptions;
  private readonly subject: string;
  private readonly streamName: string;
  private readonly maxAgeMs: number;
  private connection: NatsConnection | undefined;
  private js: JetStreamClient | undefined;
  private authenticator: ReturnType<NatsLibs["nats"]["credsAuthenticator"]> | undefined;

  constructor(options: NatsOutputOptions = {}) {
    const spool = { ...options.spool, dir: options.spool?.dir ?? DEFAULT_SPOOL_DIR };
    super("nats", options.name ?? "nats", spool);
    this.options = options;
    this.streamName = options.stream ?? "SOCKEYE_FINDINGS";
    this.subject = `${options.subjectPrefix ?? "sockeye.findings"}.${subjectToken(options.hostId ?? hostname())}`;
    this.maxAgeMs = spool.maxAgeMs ?? DEFAULT_SPOOL_MAX_AGE_MS;
  }

  /**
   * Checks what can be checked without the server (the credentials and TLS files); the
   * server itself may be down at start, which the spool is for.
   */
  protected async connect(): Promise<void> {
    const { nats } = await loadNats();
    if (this.options.credsFile !== undefined) {
      try {
        this.authenticator = nats.credsAuthenticator(new Uint8Array(readFileSync(this.options.credsFile)));
      } catch (error) {
        throw new OutputError(this.name, `credentials file ${this.options.credsFile}: ${describeError(error)}`);
      }
    }
    for (const [key, path] of Object.entries(this.options.tls ?? {})) {
      try {
        readFileSync(path);
      } catch (error) {
        throw new OutputError(this.name, `TLS ${key} ${path}: ${describeError(error)}`);
      }
    }
  }

  protected async send(findings: readonly SpooledFinding[], signal: AbortSignal): Promise<number> {
    const js = await this.jetstream();
    const timeout = this.options.ackTimeoutMs ?? 5_000;
    let acknowledged = 0;
    for (const finding of findings) {
      if (signal.aborted) break;
      try {
        // A duplicate ack means the stream has it already (sent before a lost ack): done.
        await js.publish(this.subject, finding.json, { msgID: finding.id, timeout });
      } catch (error) {
        if (acknowledged === 0) throw error;
        this.counters.lastError = describeError(error);
        break;
      }
      acknowledged++;
    }
    return acknowledged;
  }

  protected async disconnect(): Promise<void> {
    const connection = this.connection;
    this.connection = undefined;
    this.js = undefined;
    await connection?.close();
  }

  /** The connection, made on first use and again once the client gave up on one. */
  private async jetstream(): Promise<JetStreamClient> {
    if (this.connection !== undefined && !this.connection.isClosed() && this.js !== undefined) return this.js;
    const options: NodeConnectionOptions = {
      servers: this.options.servers ?? ["nats://127.0.0.1:4222"],
      name: `sockeye ${this.name}`,
      // Once connected, the client reconnects by itself, for ever; the spool holds what waits.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      ...(this.authenticator !== undefined ? { authenticator: this.authenticator } : {}),
      ...(this.options.tls !== undefined ? { tls: { ...this.options.tls } } : {}),
    };
    const { nats, js } = await loadNats();
    const connection = await nats.connect(options);
    try {
      await this.ensureStream(connection);
    } catch (error) {
      await connection.close();
      throw error;
    }
    this.connection = connection;
    this.js = js.jetstream(connection);
    return this.js;
  }

  private async ensureStream(connection: NatsConnection): Promise<void> {
    const { nats, js } = await loadNats();
    const manager = await js.jetstreamManager(connection);
    try {
      const info = await manager.streams.info(this.streamName);
      const windowMs = nats.millis(info.config.duplicate_window);
      if (windowMs < this.maxAgeMs) {
        this.options.onWarning?.(
          `output ${this.name}: stream ${this.streamName} deduplicates for ${windowMs / 1000} s, less than the spool's maximum age (${this.maxAgeMs / 1000} s): a finding re-sent later than that can be stored twice`,
        );
      }
      return;
    } catch (error) {
      if (!(error instanceof js.JetStreamApiError && error.code === STREAM_NOT_FOUND) || this.options.createStream === false) throw error;
    }
    const prefix = this.subject.slice(0, this.subject.lastIndexOf("."));
    await manager.streams.add({
      name: this.streamName,
      subjects: [`${prefix}.>`],
      storage: js.StorageType.File,
      duplicate_window: nats.nanos(this.maxAgeMs),
    });
  }
}
