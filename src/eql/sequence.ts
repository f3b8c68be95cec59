/**
 * Runs a compiled EQL sequence (compile.ts) over a stream of documents, the way Elastic's
 * EQL does: per join key, the latest partial match at each step; an event that matches step
 * i moves the key's partial at step i-1 on to step i (steps are tried last to first, so one
 * event never moves the partial it just started); a partial older than maxspan (first event
 * to this one) is dropped; an event that matches `until` drops every partial of its key.
 *
 * Elasticsearch sorts events by timestamp; a sensor delivers them in the order its rings are
 * drained, which can put an event behind a later-stamped one (two rings, one poll apart).
 * Events run as they come, so a match is reported at once; the last `reorderWindowMs` of
 * events a step or `until` matched (at most `maxHeld` of them) are kept with each key's
 * partials as they were before the event, and an event stamped before ones already run is
 * put in its place: the keys it touches go back to before the first later event that touched
 * them, and it and those later events run again on those keys in timestamp order. A match
 * already reported is not reported again; one the late event prevents (an `until` stamped
 * before it) cannot be taken back. maxspan is measured between the events' own timestamps, so
 * it holds the same in either order; an event later than the window runs as it comes.
 *
 * State is bounded: past `maxPartials` the least recently touched key goes, and that is
 * counted (evicted), as are expiries, so a flood of unmatched first steps is visible.
 */
import type { CompiledSequence, EqlDocument } from "./compile.js";
import { OptionError } from "../errors.js";

export interface SequenceMatcherOptions {
  /** Most partial matches held over all keys (default 8192). */
  maxPartials?: number;
  /** How far behind the newest event (by timestamp) an event may arrive and still run in order (default 250 ms; 0: as it comes). */
  reorderWindowMs?: number;
  /** Most recent events kept for reordering (default 256). */
  maxHeld?: number;
}

export interface SequenceStats {
  /** Partial matches held now. */
  partials: number;
  /** Sequences completed. */
  matched: number;
  /** Partials dropped because maxspan passed. */
  expired: number;
  /** Partials dropped to stay within maxPartials. */
  evicted: number;
  /** Partials dropped by an `until` event. */
  untilDropped: number;
}

/** `a` + `b`, counter by counter (a rule's totals across the matchers reloads gave it). */
export function addSequenceStats(a: SequenceStats, b: SequenceStats): SequenceStats {
  return {
    partials: a.partials + b.partials,
    matched: a.matched + b.matched,
    expired: a.expired + b.expired,
    evicted: a.evicted + b.evicted,
    untilDropped: a.untilDropped + b.untilDropped,
  };
}

interface Partial<D> {
  startMs: number;
  events: D[];
}

type Partials<D> = (Partial<D> | undefined)[];

/** What a step or `until` made of one event as it came (its document may be reused for the next one). */
interface RecentEvent<D> {
  timeMs: number;
  event: D;
  /** The until step's key when `until` matched. */
  untilKey: string | undefined;
  /** Per step: its key when the step matched. */
  stepKeys: (string | undefined)[];
  /** Each key's partials just before this event first ran on it (undefined: none). */
  before: Map<string, Partials<D> | undefined>;
  /** Keys on which this event completed a match that was reported. */
  reported: Set<string>;
}

const DEFAULT_MAX_PARTIALS = 8192;
/** Rings are drained every 100 ms: events of one poll can be that far out of order, and more under load. */
const DEFAULT_REORDER_WINDOW_MS = 250;
const DEFAULT_MAX_HELD = 256;
/** Feeds between two sweeps for expired partials (a sweep walks every key). */
const SWEEP_EVERY = 1024;

export class SequenceMatcher<D> {
  private readonly maxPartials: number;
  /** Join key → partial per step (index = the step it has matched up to). Map order = last touched. */
  private readonly byKey = new Map<string, (Partial<D> | undefined)[]>();
  private readonly counts: SequenceStats = { partials: 0, matched: 0, expired: 0, evicted: 0, untilDropped: 0 };
  private feedsSinceSweep = 0;
  private readonly reorderWindowMs: number;
  private readonly maxHeld: number;
  /** The recent events, in timestamp order (arrival order among equal ones). */
  private readonly recent: RecentEvent<D>[] = [];
  private newestMs = -Infinity;

  constructor(
    private readonly sequence: CompiledSequence,
    options: SequenceMatcherOptions = {},
  ) {
    this.maxPartials = options.maxPartials ?? DEFAULT_MAX_PARTIALS;
    if (!(this.maxPartials >= 1)) throw new OptionError(`maxPartials must be at least 1, got ${this.maxPartials}`);
    this.reorderWindowMs = options.reorderWindowMs ?? DEFAULT_REORDER_WINDOW_MS;
    if (!(this.reorderWindowMs >= 0)) throw new OptionError(`reorderWindowMs must be 0 or more, got ${this.reorderWindowMs}`);
    this.maxHeld = options.maxHeld ?? DEFAULT_MAX_HELD;
    if (!(this.maxHeld >= 0)) throw new OptionError(`maxHeld must be 0 or more, got ${this.maxHeld}`);
  }

  stats(): SequenceStats {
    return { ...this.counts };
  }

  /**
   * Offers one document of `category` seen at `timeMs`, with `event` as what a match will
   * list. Returns the events of every sequence this document completes (usually none).
   */
  feed(doc: EqlDocument, category: string, timeMs: number, event: D): D[][] {
    const { steps, until } = this.sequence;
    const applies = (c: string) => c === category || c === "any";
    const untilKey = until !== undefined && applies(until.query.category) && until.query.test(doc) ? until.key(doc) : undefined;
    let stepKeys: (string | undefined)[] | undefined;
    // `with runs=N` repeats one query N times: test it once.
    let tested: CompiledSequence["steps"][number]["query"] | undefined;
    let passed = false;
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i]!;
      if (step.query !== tested) {
        tested = step.query;
        passed = applies(step.query.category) && step.query.test(doc);
      }
      if (!passed) continue;
      const key = step.key(doc);
      if (key !== undefined) (stepKeys ??= new Array<string | undefined>(steps.length).fill(undefined))[i] = key;
    }
    if (untilKey === undefined && stepKeys === undefined) return [];
    const entry: RecentEvent<D> = { timeMs, event, untilKey, stepKeys: stepKeys ?? [], before: new Map(), reported: new Set() };
    const late = timeMs < this.newestMs && timeMs >= this.newestMs - this.reorderWindowMs;
    if (timeMs > this.newestMs) this.newestMs = timeMs;
    const matches = late ? this.runLate(entry) : this.run(entry, undefined);
    if (!late) this.recent.push(entry);
    this.forget();
    return matches;
  }

  /** Puts a late event in its place: its keys go back to before the later events, which run again after it. */
  private runLate(entry: RecentEvent<D>): D[][] {
    let at = this.recent.length;
    while (at > 0 && this.recent[at - 1]!.timeMs > entry.timeMs) at--;
    const later = this.recent.slice(at);
    const keys = new Set(keysOf(entry));
    for (const key of keys) {
      const first = later.find((other) => other.before.has(key));
      if (first !== undefined) this.restore(key, first.before.get(key));
    }
    this.recent.splice(at, 0, entry);
    const matches = this.run(entry, keys);
    for (const other of later) {
      for (const key of keys) other.before.delete(key);
      matches.push(...this.run(other, keys));
    }
    return matches;
  }

  /** Sets `key`'s partials back to `saved`. */
  private restore(key: string, saved: Partials<D> | undefined): void {
    const current = this.byKey.get(key);
    this.counts.partials += (saved !== undefined ? held(saved) : 0) - (current !== undefined ? held(current) : 0);
    this.byKey.delete(key);
    if (saved !== undefined) this.byKey.set(key, saved.slice());
  }

  /** Drops recent events past the window or the count. */
  private forget(): void {
    let drop = 0;
    const oldest = this.newestMs - this.reorderWindowMs;
    while (drop < this.recent.length && (this.recent.length - drop > this.maxHeld || this.recent[drop]!.timeMs < oldest)) drop++;
    if (drop > 0) this.recent.splice(0, drop);
  }

  /** Moves the partials as one event says, on `only` those keys when given. */
  private run(entry: RecentEvent<D>, only: ReadonlySet<string> | undefined): D[][] {
    const { timeMs, event, untilKey, stepKeys } = entry;
    if (++this.feedsSinceSweep >= SWEEP_EVERY) this.sweep(timeMs);
    const { steps, maxspanMs } = this.sequence;
    const inScope = (key: string | undefined): key is string => key !== undefined && (only === undefined || only.has(key));
    const save = (key: string) => {
      if (!entry.before.has(key)) entry.before.set(key, this.byKey.get(key)?.slice());
    };

    if (inScope(untilKey)) {
      save(untilKey);
      const partials = this.byKey.get(untilKey);
      if (partials !== undefined) {
        const dropped = held(partials);
        this.counts.untilDropped += dropped;
        this.counts.partials -= dropped;
        this.byKey.delete(untilKey);
      }
    }

    const matches: D[][] = [];
    for (let i = steps.length - 1; i >= 0; i--) {
      const key = stepKeys[i];
      if (!inScope(key)) continue;
      save(key);
      let partials = this.byKey.get(key);
      if (i === 0) {
        partials ??= new Array<Partial<D> | undefined>(steps.length - 1).fill(undefined);
        if (partials[0] === undefined) this.counts.partials++;
        partials[0] = { startMs: timeMs, events: [event] };
        this.touch(key, partials);
        continue;
      }
      const previous = partials?.[i - 1];
      if (partials === undefined || previous === undefined) continue;
      partials[i - 1] = undefined;
      this.counts.partials--;
      if (maxspanMs !== undefined && timeMs - previous.startMs > maxspanMs) {
        this.counts.expired++;
        this.touch(key, partials);
        continue;
      }
      const advanced: Partial<D> = { startMs: previous.startMs, events: [...previous.events, event] };
      if (i === steps.length - 1) {
        if (!entry.reported.has(key)) {
          entry.reported.add(key);
          matches.push(advanced.events);
          this.counts.matched++;
        }
      } else {
        if (partials[i] === undefined) this.counts.partials++;
        partials[i] = advanced;
      }
      this.touch(key, partials);
    }
    return matches;
  }

  /** Moves `key` to the young end, or drops it when it holds nothing; then enforces the bound. */
  private touch(key: string, partials: (Partial<D> | undefined)[]): void {
    this.byKey.delete(key);
    if (held(partials) > 0) this.byKey.set(key, partials);
    while (this.counts.partials > this.maxPartials) {
      const oldest = this.byKey.entries().next();
      if (oldest.done === true) break;
      const dropped = held(oldest.value[1]);
      this.byKey.delete(oldest.value[0]);
      this.counts.partials -= dropped;
      this.counts.evicted += dropped;
    }
  }

  /** Drops every partial whose maxspan has passed by `nowMs`. */
  private sweep(nowMs: number): void {
    this.feedsSinceSweep = 0;
    const { maxspanMs } = this.sequence;
    if (maxspanMs === undefined) return;
    for (const [key, partials] of this.byKey) {
      for (let i = 0; i < partials.length; i++) {
        const partial = partials[i];
        if (partial !== undefined && nowMs - partial.startMs > maxspanMs) {
          partials[i] = undefined;
          this.counts.partials--;
          this.counts.expired++;
        }
      }
      if (held(partials) === 0) this.byKey.delete(key);
    }
  }
}

function keysOf<D>(entry: RecentEvent<D>): string[] {
  const keys = entry.stepKeys.filter((key): key is string => key !== undefined);
  if (entry.untilKey !== undefined) keys.push(entry.untilKey);
  return keys;
}

function held<D>(partials: readonly (Partial<D> | undefined)[]): number {
  let n = 0;
  for (const partial of partials) if (partial !== undefined) n++;
  return n;
}
