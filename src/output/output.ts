/**
 * The contract every finding output keeps, and the counting they share.
 *
 * An output is opened once at start (where a bad path or URL fails loudly), then takes
 * batches with `write()`, which never waits on I/O and never throws: what cannot be
 * delivered is dropped and counted with a typed reason, so the daemon's event loop keeps
 * draining the kernel rings whatever the SIEM or the disk is doing.
 */
import type { Finding } from "../engine/finding.js";
import { EXIT_REFUSED, SockeyeError, type ExitStatus } from "../errors.js";

/** Why a finding accepted by `write()` was never delivered. */
export type OutputDropReason =
  /** The output's bounded queue was full; the newest findings are the ones dropped. */
  | "queue_full"
  /** JSON.stringify failed on the finding (a value JSON cannot carry). */
  | "encode_error"
  /** The stream or file refused the bytes (EPIPE, ENOSPC, a failed rotation...). */
  | "write_error"
  /** The webhook answered a status that retrying cannot fix (4xx other than 429, 3xx). */
  | "http_rejected"
  /** Every attempt at a webhook batch failed (network errors, timeouts, 5xx, 429). */
  | "retries_exhausted"
  /** Still queued or in flight when a flush's deadline passed. */
  | "flush_timeout"
  /** Written before open() or after close(). */
  | "closed"
  /** The on-disk spool reached its byte bound; its oldest findings are the ones dropped. */
  | "spool_full"
  /** Spooled longer than the spool's maximum age without the receiver taking it. */
  | "spool_expired";

export const OUTPUT_DROP_REASONS: readonly OutputDropReason[] = [
  "queue_full",
  "encode_error",
  "write_error",
  "http_rejected",
  "retries_exhausted",
  "flush_timeout",
  "closed",
  "spool_full",
  "spool_expired",
];

export interface OutputStats {
  /** The output's name: unique within an OutputSet, used as the metrics label. */
  name: string;
  type: string;
  /**
   * Findings delivered (handed to the stream, appended to the file, accepted by the server);
   * on the durable outputs, heartbeat records too (one per heartbeat_interval_s).
   */
  written: number;
  dropped: Record<OutputDropReason, number>;
  /** Findings accepted and not yet delivered or dropped (in flight included). */
  queueDepth: number;
  /** Webhook requests repeated after a retryable failure. */
  retries: number;
  /** File rotations done. */
  rotations: number;
  /** The last delivery problem, for logs; absent while there has been none. */
  lastError?: string;
  /** Durable outputs: their on-disk spool (queueDepth is its depth). */
  spool?: { bytes: number; oldestAgeS: number };
}

export interface FlushResult {
  /** true when everything accepted before the deadline was delivered or dropped for cause. */
  complete: boolean;
  /** Findings dropped as `flush_timeout` because the deadline passed first. */
  abandoned: number;
}

/**
 * A record that is not a finding: the daemon's heartbeat, ECS `event.kind: "state"`. Only
 * durable outputs take it (see FindingOutput.writeState).
 */
export interface StateRecord {
  "@timestamp": string;
  event: { kind: "state"; id: string; [field: string]: unknown };
  [field: string]: unknown;
}

export interface FindingOutput {
  readonly name: string;
  readonly type: string;
  /**
   * Present on the durable outputs (file, spooled webhook, NATS): takes a state record the
   * way it takes findings, so a receiver that stops getting heartbeats knows the host went
   * quiet. Memory-queue outputs (stdout, syslog, webhook without a spool) leave it out.
   */
  writeState?(record: StateRecord): void;
  /** Rejects with an OutputError when the output cannot work (bad path, bad URL, ...). */
  open(): Promise<void>;
  /** Accepts a batch; returns at once. Delivery trouble is counted, never thrown. */
  write(findings: readonly Finding[]): void;
  /**
   * Resolves when everything accepted so far is delivered or dropped. At the deadline
   * what is left is dropped as `flush_timeout`, so this is the shutdown (or reload) barrier.
   */
  flush(timeoutMs?: number): Promise<FlushResult>;
  /** Flushes with the deadline, then releases the stream, file or connections. */
  close(timeoutMs?: number): Promise<FlushResult>;
  stats(): OutputStats;
}

export const DEFAULT_FLUSH_TIMEOUT_MS = 5_000;

/**
 * An output that cannot be opened: one line naming the output and the problem. Exit status
 * 1 when the host refused (a directory that does not exist, a port taken), 2 when what was
 * configured cannot work anywhere (a URL with credentials, a header HTTP cannot carry).
 */
export class OutputError extends SockeyeError {
  constructor(
    readonly output: string,
    problem: string,
    exitStatus: ExitStatus = EXIT_REFUSED,
  ) {
    // Paths and server answers can carry newlines; the contract is one line.
    super(`output ${output}: ${problem}`.replace(/\s*[\r\n]+\s*/g, " "), "SOCKEYE_OUTPUT", exitStatus);
  }
}

/** The counters behind `stats()`, one per output instance. */
export class OutputCounters {
  written = 0;
  retries = 0;
  rotations = 0;
  lastError: string | undefined;
  readonly dropped: Record<OutputDropReason, number> = Object.fromEntries(
    OUTPUT_DROP_REASONS.map((reason) => [reason, 0]),
  ) as Record<OutputDropReason, number>;

  constructor(
    readonly name: string,
    readonly type: string,
  ) {}

  drop(reason: OutputDropReason, count: number, error?: unknown): void {
    this.dropped[reason] += count;
    if (error !== undefined) this.lastError = describeError(error);
  }

  snapshot(queueDepth: number, spool?: OutputStats["spool"]): OutputStats {
    return {
      name: this.name,
      type: this.type,
      written: this.written,
      dropped: { ...this.dropped },
      queueDepth,
      retries: this.retries,
      rotations: this.rotations,
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
      ...(spool !== undefined ? { spool } : {}),
    };
  }
}

/**
 * Two spans of one output's life added up (a daemon's output set retired at a reload and
 * its successor of the same name): nothing an earlier set dropped disappears from the totals.
 */
export function addOutputStats(earlier: OutputStats, later: OutputStats): OutputStats {
  const dropped = { ...later.dropped };
  for (const reason of OUTPUT_DROP_REASONS) dropped[reason] = (earlier.dropped[reason] ?? 0) + (later.dropped[reason] ?? 0);
  return {
    ...later,
    written: earlier.written + later.written,
    dropped,
    retries: earlier.retries + later.retries,
    rotations: earlier.rotations + later.rotations,
  };
}

/** One finding (or state record) as JSON text, or undefined (counted) when JSON cannot carry it. */
export function encodeFinding(finding: Finding | StateRecord, counters: OutputCounters): string | undefined {
  try {
    return JSON.stringify(finding);
  } catch (error) {
    counters.drop("encode_error", 1, error);
    return undefined;
  }
}

export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // A SockeyeError's message is already the whole story; its code is not an errno.
  const code = error instanceof SockeyeError ? undefined : (error as NodeJS.ErrnoException).code;
  // fetch() wraps the socket error (ECONNREFUSED, ...) in a TypeError("fetch failed").
  const cause = error.cause instanceof Error ? `: ${describeError(error.cause)}` : "";
  return `${code !== undefined && !error.message.includes(code) ? `${code} ` : ""}${error.message}${cause}`;
}

/** Resolves after `ms`, or at once when `signal` aborts; never rejects. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve();
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}
