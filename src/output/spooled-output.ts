/**
 * The FindingOutput part common to durable outputs (NATS JetStream, the spooled webhook): write() appends each
 * finding to the on-disk spool before returning, one delivery loop sends what the spool
 * holds, in order, and a record leaves the spool only once the receiver acknowledged it.
 *
 * A flush or close that reaches its deadline drops nothing: what is left stays spooled and
 * the next start (or the output that replaces this one at a reload) sends it. While the
 * receiver is down the loop retries with a backoff, so memory stays flat and the disk holds
 * the backlog, up to the spool's bounds.
 *
 * The spool of a folder is shared by the outputs of one process that name it: a reload opens
 * the new output before closing the old, and both append to the same spool; only one of
 * them delivers at a time (the old until it is closed), so the order holds across a reload.
 */
import { realpathSync } from "node:fs";
import type { Finding } from "../engine/finding.js";
import { IdleWaiters, IncidentRanks, linePriority } from "./line-output.js";
import { DEFAULT_FLUSH_TIMEOUT_MS, OutputCounters, OutputError, describeError, encodeFinding, sleep, type FindingOutput, type FlushResult, type OutputDropReason, type OutputStats, type StateRecord } from "./output.js";
import { Spool, SpoolError, type SpoolOptions, type SpoolRecord } from "./spool.js";

/** A spooled finding as the transport sends it: its id (the receiver's deduplication key) and JSON. */
export interface SpooledFinding {
  id: string;
  json: Buffer;
}

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;
const DEFAULT_MAX_BATCH = 256;

interface SharedSpool {
  spool: Spool;
  users: number;
  /** Resolves when the output delivering from it lets go. */
  delivery: Promise<void>;
}

// A spool folder is a process-wide resource (one owner.pid): outputs naming the same folder
// must share one Spool, or a reload would find the folder taken by its own predecessor.
const sharedSpools = new Map<string, SharedSpool>();

function acquireSpool(options: SpoolOptions & { dir: string }): SharedSpool {
  let key = options.dir;
  try {
    key = realpathSync(options.dir);
  } catch {
    // Not there yet: the Spool creates it.
  }
  let shared = sharedSpools.get(key);
  if (shared === undefined) {
    shared = { spool: new Spool(options), users: 0, delivery: Promise.resolve() };
    sharedSpools.set(key, shared);
  }
  shared.users++;
  return shared;
}

function releaseSpool(shared: SharedSpool): void {
  if (--shared.users > 0) return;
  for (const [key, candidate] of sharedSpools) if (candidate === shared) sharedSpools.delete(key);
  shared.spool.close();
}

export abstract class SpooledOutput implements FindingOutput {
  protected readonly counters: OutputCounters;
  private shared: SharedSpool | undefined;
  private state: "new" | "open" | "closed" = "new";
  private readonly idle = new IdleWaiters();
  private readonly stopping = new AbortController();
  private wake: (() => void) | undefined;
  /** Findings the send() in progress refused (see refused()). */
  private refusedInSend = 0;
  /** Set by write(): the loop must look at the spool again before it sleeps. */
  private kicked = false;
  /** Incidents this output spooled a finding of: their later findings outrank others at a full spool. */
  private readonly ranks = new IncidentRanks();
  private loop: Promise<void> | undefined;
  /** The spool's drop counts when this output started delivering, and when it stopped. */
  private spoolDrops: { from?: { full: number; expired: number }; to?: { full: number; expired: number } } = {};

  constructor(
    readonly type: string,
    readonly name: string,
    private readonly spoolOptions: SpoolOptions & { dir: string },
    private readonly maxBatch = DEFAULT_MAX_BATCH,
  ) {
    this.counters = new OutputCounters(name, type);
  }

  /** Connects; throws (or rejects with) an OutputError when the output cannot work. */
  protected abstract connect(): Promise<void>;
  /**
   * Sends the findings in order and resolves with how many, from the first, are settled:
   * acknowledged by the receiver, or refused by it for good and counted with `refused()`.
   * Either way they leave the spool. Rejects when none is settled.
   */
  protected abstract send(findings: readonly SpooledFinding[], signal: AbortSignal): Promise<number>;
  protected abstract disconnect(): Promise<void>;

  /** For send(): findings the receiver refused for good; they leave the spool, counted, not written. */
  protected refused(reason: OutputDropReason, count: number, error: unknown): void {
    this.counters.drop(reason, count, error);
    this.refusedInSend += count;
  }

  async open(): Promise<void> {
    try {
      this.shared = acquireSpool(this.spoolOptions);
    } catch (error) {
      if (error instanceof SpoolError) throw new OutputError(this.name, error.message);
      throw error;
    }
    try {
      await this.connect();
    } catch (error) {
      releaseSpool(this.shared);
      this.shared = undefined;
      throw error;
    }
    this.state = "open";
    this.loop = this.deliverLoop(this.shared);
  }

  write(findings: readonly Finding[]): void {
    if (this.state !== "open") {
      this.counters.drop("closed", findings.length);
      return;
    }
    this.append(findings);
  }

  /** A state record (the heartbeat) goes through the spool like a finding: the receiver dedups it by event.id too. */
  writeState(record: StateRecord): void {
    if (this.state === "open") this.append([record]);
  }

  private append(records: readonly (Finding | StateRecord)[]): void {
    const payloads: Buffer[] = [];
    const ranks: number[] = [];
    for (const record of records) {
      const json = encodeFinding(record, this.counters);
      if (json === undefined) continue;
      payloads.push(Buffer.from(`${record.event.id}\n${json}`));
      // A full spool drops by rank (spool.ts): a heartbeat lowest, then as a memory queue does.
      if (record.event.kind === "state") ranks.push(0);
      else {
        const priority = linePriority(record as Finding);
        ranks.push(Math.min(this.ranks.rank(priority), IncidentRanks.count - 1));
        if (priority.incident !== undefined) this.ranks.start(priority.incident);
      }
    }
    try {
      this.shared!.spool.append(payloads, ranks);
    } catch (error) {
      this.counters.drop("write_error", payloads.length, error);
      return;
    }
    this.kicked = true;
    this.wake?.();
  }

  /** Resolves once everything spooled before the call is acknowledged, or at the deadline (nothing dropped). */
  async flush(timeoutMs = DEFAULT_FLUSH_TIMEOUT_MS): Promise<FlushResult> {
    const spool = this.shared?.spool;
    if (spool === undefined || this.state !== "open") return { complete: true, abandoned: 0 };
    const target = spool.lastSeq;
    const deadline = Date.now() + timeoutMs;
    const done = () => spool.ackedSeq >= target;
    // The loop wakes waiters at every ack and whenever it runs dry, not only at the target.
    while (!done() && Date.now() < deadline) await this.idle.wait(done, deadline - Date.now());
    return { complete: done(), abandoned: 0 };
  }

  async close(timeoutMs = DEFAULT_FLUSH_TIMEOUT_MS): Promise<FlushResult> {
    const result = await this.flush(timeoutMs);
    if (this.state !== "open") return result;
    this.state = "closed";
    this.stopping.abort();
    this.wake?.();
    await this.loop;
    await this.disconnect().catch((error: unknown) => (this.counters.lastError = describeError(error)));
    releaseSpool(this.shared!);
    return result;
  }

  stats(): OutputStats {
    const spool = this.shared?.spool.stats();
    const { from, to } = this.spoolDrops;
    const now = to ?? (spool !== undefined ? { full: spool.droppedFull, expired: spool.droppedExpired } : undefined);
    if (from !== undefined && now !== undefined) {
      this.counters.dropped.spool_full = now.full - from.full;
      this.counters.dropped.spool_expired = now.expired - from.expired;
    }
    if (spool === undefined || this.state === "closed") return this.counters.snapshot(0);
    return this.counters.snapshot(spool.depth, { bytes: spool.bytes, oldestAgeS: Math.round(spool.oldestAgeMs / 1000) });
  }

  private async deliverLoop(shared: SharedSpool): Promise<void> {
    // Behind the output this one replaces, if any: one sender at a time keeps the order.
    const previous = shared.delivery;
    let release!: () => void;
    shared.delivery = new Promise<void>((resolve) => (release = resolve));
    await previous;
    const spool = shared.spool;
    const dropCounts = () => ({ full: spool.stats().droppedFull, expired: spool.stats().droppedExpired });
    // Drops are the sender's to count: two outputs sharing the spool must not both report one.
    this.spoolDrops.from = dropCounts();
    spool.rewind();
    let failures = 0;
    try {
      while (!this.stopping.signal.aborted) {
        let records: SpoolRecord[];
        this.kicked = false;
        try {
          records = await spool.next(this.maxBatch);
        } catch (error) {
          this.counters.lastError = describeError(error);
          await sleep(RETRY_MAX_MS, this.stopping.signal);
          continue;
        }
        if (records.length === 0) {
          this.idle.wake();
          if (this.kicked || this.stopping.signal.aborted) continue;
          await new Promise<void>((resolve) => (this.wake = resolve));
          this.wake = undefined;
          continue;
        }
        let acknowledged = 0;
        this.refusedInSend = 0;
        try {
          acknowledged = await this.send(records.map(toSpooledFinding), this.stopping.signal);
        } catch (error) {
          this.counters.lastError = describeError(error);
        }
        if (acknowledged > 0) {
          spool.ack(records[acknowledged - 1]!.seq);
          // What send() dropped (and counted) leaves the spool too, but was not delivered.
          this.counters.written += acknowledged - this.refusedInSend;
          this.idle.wake();
        }
        if (acknowledged < records.length) {
          spool.rewind();
          if (acknowledged === 0) failures++;
          this.counters.retries++;
          await sleep(Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(failures, 10)), this.stopping.signal);
        } else {
          failures = 0;
        }
      }
    } finally {
      this.spoolDrops.to = dropCounts();
      this.idle.wake();
      release();
    }
  }
}

function toSpooledFinding(record: SpoolRecord): SpooledFinding {
  const newline = record.payload.indexOf(0x0a);
  return { id: record.payload.subarray(0, newline).toString(), json: record.payload.subarray(newline + 1) };
}
