/**
 * Which (rule, fold key) pairs already produced a finding, so later detections with the same
 * key are counted instead of emitted: one reverse shell's dozen dups onto fds 0-2 become one
 * finding. The first finding goes out at once; nothing is held back waiting for more.
 *
 * Bounded two ways: at most `maxKeys` keys (least recently seen dropped first), and a key
 * not seen for `maxAgeMs` of event time is forgotten, after which the same key alerts again.
 */
export interface FoldOptions {
  maxKeys?: number;
  maxAgeMs?: number;
}

const DEFAULT_MAX_KEYS = 4096;
const DEFAULT_MAX_AGE_MS = 10 * 60_000;
const SWEEP_EVERY_MS = 1000;

export class FoldMemory {
  private readonly maxKeys: number;
  private readonly maxAgeMs: number;
  /** key → last time seen; insertion order is recency order (re-set on every hit). */
  private readonly lastSeenMs = new Map<string, number>();
  /** Event time of the last sweep for keys past maxAgeMs. */
  private sweptAtMs = -Infinity;

  constructor(options: FoldOptions = {}) {
    this.maxKeys = options.maxKeys ?? DEFAULT_MAX_KEYS;
    this.maxAgeMs = options.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
  }

  get size(): number {
    return this.lastSeenMs.size;
  }

  /** True when `key` was seen recently enough that this detection folds into its finding. */
  seen(key: string, nowMs: number): boolean {
    const last = this.lastSeenMs.get(key);
    const folds = last !== undefined && nowMs - last < this.maxAgeMs;
    this.lastSeenMs.delete(key);
    // max(): a replay's events may be slightly out of order; recency never goes backwards.
    this.lastSeenMs.set(key, Math.max(last ?? nowMs, nowMs));
    // A sweep walks the Map from its oldest entry, and a Map iterator first steps over every
    // entry deleted since the last rehash: each hit deletes one, so sweeping on every call
    // costs a flood of one shell's dups most of its time. Sweep
    // when over the key limit, or at most once a second of event time for age.
    if (this.lastSeenMs.size > this.maxKeys || nowMs - this.sweptAtMs >= SWEEP_EVERY_MS) this.forgetOld(nowMs);
    return folds;
  }

  private forgetOld(nowMs: number): void {
    this.sweptAtMs = nowMs;
    for (const [key, last] of this.lastSeenMs) {
      if (this.lastSeenMs.size <= this.maxKeys && nowMs - last < this.maxAgeMs) break;
      this.lastSeenMs.delete(key);
    }
  }
}
