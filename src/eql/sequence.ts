/**
 * Runs a compiled EQL sequence (compile.ts) over a stream of documents, the way Elastic's
 * EQL does: per join key, the latest partial match at each step; an event that matches step
 * i moves the key's partial at step i-1 on to step i (steps are tried last to first, so one
 * event never moves the partial it just started); a partial older than maxspan (first event
 * to this one) is dropped; an event that matches `until` drops every partial of its key.
 *
 * State is bounded: past `maxPartials` the least recently touched key goes, and that is
 * counted (evicted), as are expiries, so a flood of unmatched first steps is visible.
 */
import type { CompiledSequence, EqlDocument } from "./compile.js";
import { OptionError } from "../errors.js";

export interface SequenceMatcherOptions {
  /** Most partial matches held over all keys (default 8192). */
  maxPartials?: number;
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

const DEFAULT_MAX_PARTIALS = 8192;
/** Feeds between two sweeps for expired partials (a sweep walks every key). */
const SWEEP_EVERY = 1024;

export class SequenceMatcher<D> {
  private readonly maxPartials: number;
  /** Join key → partial per step (index = the step it has matched up to). Map order = last touched. */
  private readonly byKey = new Map<string, (Partial<D> | undefined)[]>();
  private readonly counts: SequenceStats = { partials: 0, matched: 0, expired: 0, evicted: 0, untilDropped: 0 };
  private feedsSinceSweep = 0;

  constructor(
    private readonly sequence: CompiledSequence,
    options: SequenceMatcherOptions = {},
  ) {
    this.maxPartials = options.maxPartials ?? DEFAULT_MAX_PARTIALS;
    if (!(this.maxPartials >= 1)) throw new OptionError(`maxPartials must be at least 1, got ${this.maxPartials}`);
  }

  stats(): SequenceStats {
    return { ...this.counts };
  }

  /**
   * Offers one document of `category` seen at `timeMs`, with `event` as what a match will
   * list. Returns the events of every sequence this document completes (usually none).
   */
  feed(doc: EqlDocument, category: string, timeMs: number, event: D): D[][] {
    if (++this.feedsSinceSweep >= SWEEP_EVERY) this.sweep(timeMs);
    const { steps, until, maxspanMs } = this.sequence;
    const applies = (c: string) => c === category || c === "any";

    if (until !== undefined && applies(until.query.category) && until.query.test(doc)) {
      const key = until.key(doc);
      const partials = key !== undefined ? this.byKey.get(key) : undefined;
      if (partials !== undefined) {
        const dropped = held(partials);
        this.counts.untilDropped += dropped;
        this.counts.partials -= dropped;
        this.byKey.delete(key!);
      }
    }

    const matches: D[][] = [];
    for (let i = steps.length - 1; i >= 0; i--) {
      const step = steps[i]!;
      if (!applies(step.query.category) || !step.query.test(doc)) continue;
      const key = step.key(doc);
      if (key === undefined) continue;
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
        matches.push(advanced.events);
        this.counts.matched++;
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

function held<D>(partials: readonly (Partial<D> | undefined)[]): number {
  let n = 0;
  for (const partial of partials) if (partial !== undefined) n++;
  return n;
}
