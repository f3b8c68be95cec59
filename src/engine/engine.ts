/**
 * The detection engine: events in, findings out.
 *
 * For every event it first feeds the process table (fork/exec/exit), so a rule about an
 * exec sees the process as it is after that exec; then it runs the rules subscribed to the
 * event's kind with a read-only context, and turns their detections into findings.
 *
 * Nothing a rule or an event does stops the engine: a rule that throws is counted and
 * logged once, an event of a kind this build does not know is counted and skipped.
 * The engine is synchronous and does no I/O; the pipeline (src/pipeline/) drives it.
 */
import { hostname } from "node:os";
import { OptionError } from "../errors.js";
import { addSequenceStats, type SequenceStats } from "../eql/sequence.js";
import { EVENT_KINDS, type EventKind, type SensorEvent } from "../sensor/events.js";
import { ProcessTable } from "../process/table.js";
import { buildFinding, type Finding } from "./finding.js";
import { FoldMemory, type FoldOptions } from "./fold.js";
import type { AnyRule, Detection, ProcessView, RuleContext, RuleGate, RuleState } from "./rule.js";

/** Where the engine reports trouble. Injected so a daemon routes it to its own log. */
export interface EngineLogger {
  warn(message: string, details?: Record<string, unknown>): void;
}

/** Why an event (or a line that should have been one) never reached the rules. */
export type DropReason = "unknown_kind" | "malformed_line";

export interface EngineStats {
  /** Events seen, by kind (unknown kinds included, under their own name). */
  eventsByKind: Record<string, number>;
  /** Findings emitted, by rule id. */
  findingsByRule: Record<string, number>;
  /** Detections folded into an earlier finding, by rule id. */
  foldedByRule: Record<string, number>;
  folded: number;
  /** Detections a rule suppressed, by rule id then reason (e.g. an allowlist entry). */
  suppressedByRule: Record<string, Record<string, number>>;
  /** Exceptions thrown by a rule, by rule id. */
  ruleErrors: Record<string, number>;
  dropped: Record<DropReason, number>;
  /**
   * Partial matches of the sequence rules, by rule id: held now, and totals matched,
   * expired, evicted and dropped by `until`, those of the rule's earlier loads included.
   */
  sequences: Record<string, SequenceStats>;
  /** What each rule with memory holds now and let go so far, by rule id (the current rules only). */
  ruleState: Record<string, RuleState>;
}

/** Takes a detection before its finding is built (true: counted elsewhere, not built). */
export type DetectionAbsorber = (ruleId: string, detection: Detection, event: SensorEvent) => boolean;

export interface EngineOptions {
  /** The rules to run: e.g. `[...builtinRules(), myRule]`. Ids must be unique. */
  rules: readonly AnyRule[];
  /**
   * Defaults to an empty table of OFFLINE_HOST. On a live host give one made with
   * `new ProcessTable({ host: new ProcHostView() })` and call its `seedFromProc()`: rules
   * read the host through the table's.
   */
  processes?: ProcessTable;
  /** host.name in findings; defaults to os.hostname(). */
  hostName?: string;
  /** Wall clock for event.created and RuleContext.now; injectable for deterministic replays. */
  now?: () => number;
  /** Defaults to JSON lines on stderr (stdout is for findings). */
  logger?: EngineLogger;
  /** false: every detection is its own finding (per-fd findings for TRC-101). */
  fold?: boolean | FoldOptions;
}

const stderrLogger: EngineLogger = {
  warn(message, details) {
    process.stderr.write(`${JSON.stringify({ level: "warn", message, ...details })}\n`);
  },
};

const KNOWN_KINDS: ReadonlySet<string> = new Set(EVENT_KINDS);

/**
 * One place in a kind's list of what runs: a rule, or the members of a gate (Rule.gate) that
 * take this kind, at the place of the first of them.
 */
interface Dispatch {
  rule: AnyRule | undefined;
  gate: RuleGate | undefined;
  /** A gate's members of this kind, in the rule list's order. */
  members: AnyRule[];
  /** The same, by member number. */
  byMember: (AnyRule | undefined)[];
}
const NO_DISPATCH: readonly Dispatch[] = Object.freeze([]);

export class Engine {
  readonly processes: ProcessTable;
  private rules_: readonly AnyRule[] = [];
  private readonly rulesByKind = new Map<EventKind, Dispatch[]>();
  private readonly hostName: string;
  private readonly now: () => number;
  private readonly logger: EngineLogger;
  private readonly folds: FoldMemory | undefined;
  private readonly context: RuleContext;
  /** Sequence totals of rules a reload replaced, by id (held partials not included: they went with the rule). */
  private readonly retiredSequences = new Map<string, SequenceStats>();
  private readonly counts: Omit<EngineStats, "sequences" | "ruleState"> = {
    eventsByKind: counter(),
    findingsByRule: counter(),
    foldedByRule: counter(),
    folded: 0,
    suppressedByRule: {},
    ruleErrors: counter(),
    dropped: { unknown_kind: 0, malformed_line: 0 },
  };

  private absorber: DetectionAbsorber | undefined;

  constructor(options: EngineOptions) {
    this.processes = options.processes ?? new ProcessTable();
    this.hostName = options.hostName ?? hostname();
    this.now = options.now ?? Date.now;
    this.logger = options.logger ?? stderrLogger;
    this.folds = options.fold === false ? undefined : new FoldMemory(options.fold === true ? {} : options.fold);
    const table = this.processes;
    // Rules get only the reading half of the table; its entries are frozen.
    const view: ProcessView = {
      get: (pid, startNs) => table.get(pid, startNs),
      ancestors: (pid, max) => table.ancestors(pid, max),
      workingDirectory: (pid, startNs) => table.workingDirectory(pid, startNs),
      liveFacts: (pid, startNs) => table.liveFacts(pid, startNs),
      environment: (pid, startNs, names) => table.environment(pid, startNs, names),
      userName: (uid) => table.userName(uid),
      groupName: (gid) => table.groupName(gid),
      bootId: () => table.bootId(),
      hostId: () => table.hostId(),
      container: (cgroupId, pid) => table.container(cgroupId, pid),
    };
    this.context = Object.freeze({ processes: Object.freeze(view), host: table.host, now: () => this.now() });
    this.setRules(options.rules);
  }

  /** The rules this engine runs, in the order given. */
  get rules(): readonly AnyRule[] {
    return this.rules_;
  }

  /**
   * Swaps the rule set between two events (a daemon's reload): the process table, fold
   * memory and counters carry over, so no event is lost and a folded shell stays folded.
   * Throws, changing nothing, when two rules share an id.
   */
  setRules(rules: readonly AnyRule[]): void {
    const byKind = this.index(rules);
    for (const rule of this.rules_) {
      const stats = rule.sequenceStats?.();
      if (stats === undefined) continue;
      const earlier = this.retiredSequences.get(rule.meta.id);
      const retired = { ...stats, partials: 0 };
      this.retiredSequences.set(rule.meta.id, earlier !== undefined ? addSequenceStats(earlier, retired) : retired);
    }
    this.rules_ = [...rules];
    this.rulesByKind.clear();
    for (const [kind, list] of byKind) this.rulesByKind.set(kind, list);
    for (const rule of rules) this.prepare(rule);
  }

  /** A snapshot; later events do not change it. */
  stats(): EngineStats {
    const c = this.counts;
    // Copied field by field (plain objects, as structuredClone made them): the stats line and
    // every metrics scrape take this, and the clone's serialization was most of its cost.
    return {
      eventsByKind: copyCounts(c.eventsByKind),
      findingsByRule: copyCounts(c.findingsByRule),
      foldedByRule: copyCounts(c.foldedByRule),
      folded: c.folded,
      suppressedByRule: Object.fromEntries(Object.entries(c.suppressedByRule).map(([id, reasons]) => [id, { ...reasons }])),
      ruleErrors: copyCounts(c.ruleErrors),
      dropped: { ...c.dropped },
      ...this.ruleStats(),
    };
  }

  /**
   * The part of stats() that says what the rules hold and let go (sequences and rule state),
   * without the event and finding counts: what the coverage check samples several times a second.
   */
  ruleStats(): Pick<EngineStats, "sequences" | "ruleState"> {
    const sequences = counter<SequenceStats>();
    for (const [id, retired] of this.retiredSequences) sequences[id] = { ...retired };
    for (const rule of this.rules_) {
      const stats = rule.sequenceStats?.();
      if (stats === undefined) continue;
      const earlier = sequences[rule.meta.id];
      sequences[rule.meta.id] = earlier !== undefined ? addSequenceStats(earlier, stats) : stats;
    }
    const ruleState = counter<RuleState>();
    for (const rule of this.rules_) {
      const state = rule.state?.();
      if (state !== undefined) ruleState[rule.meta.id] = { ...state };
    }
    return { sequences, ruleState };
  }

  /**
   * From now on, a detection `absorber` takes is counted as a finding of its rule but never
   * built into one (Pipeline.watchCoverage: a decoy flood's thousands of verdicts go into one
   * SENSOR-001, and building each first was most of the flood's cost). Undefined: none.
   */
  absorbWith(absorber: DetectionAbsorber | undefined): void {
    this.absorber = absorber;
  }

  /** For stages in front of the engine (decoder, replay) that drop what they cannot read. */
  countDrop(reason: DropReason): void {
    this.counts.dropped[reason]++;
  }

  /** Runs one event through the table and the rules; returns the findings to emit now. */
  handle(event: SensorEvent): Finding[] {
    const kind: string = event.kind;
    increment(this.counts.eventsByKind, kind);
    if (!KNOWN_KINDS.has(kind)) {
      this.countDrop("unknown_kind");
      return [];
    }
    this.processes.apply(event);
    // Almost every event finds nothing: no array is made for it (a process storm's exec, fork
    // and exit records are most of a host's events, and each array is garbage to collect).
    let findings: Finding[] | undefined;
    for (const entry of this.rulesByKind.get(event.kind) ?? NO_DISPATCH) {
      if (entry.gate === undefined) {
        findings = this.run(entry.rule!, event, findings);
        continue;
      }
      const admitted = this.admit(entry, event);
      if (admitted === undefined) {
        for (const rule of entry.members) findings = this.run(rule, event, findings);
        continue;
      }
      for (let k = 0; k < admitted.length; k++) {
        const rule = entry.byMember[admitted[k]!];
        if (rule !== undefined) findings = this.run(rule, event, findings);
      }
    }
    return findings ?? [];
  }

  /** One rule on one event: its findings appended to `findings` (made when the first comes). */
  private run(rule: AnyRule, event: SensorEvent, findings: Finding[] | undefined): Finding[] | undefined {
    const result = this.evaluate(rule, event);
    if (result === null) return findings;
    if (!Array.isArray(result)) {
      const finding = this.toFinding(rule, event, result as Detection);
      if (finding !== undefined) (findings ??= []).push(finding);
      return findings;
    }
    for (const detection of result as readonly Detection[]) {
      const finding = this.toFinding(rule, event, detection);
      if (finding !== undefined) (findings ??= []).push(finding);
    }
    return findings;
  }

  /** The members a gate admits; a gate that throws admits every member (counted as an error of the first). */
  private admit(entry: Dispatch, event: SensorEvent): readonly number[] | undefined {
    try {
      return entry.gate!.admit(event, this.context);
    } catch (error) {
      this.countRuleError(entry.members[0]!, event.kind, error);
      return undefined;
    }
  }

  /**
   * The rules that judge held candidates again (Rule.reconsider), between two events: the
   * host answered a look that had timed out. Returns the findings to emit now.
   */
  reconsider(): Finding[] {
    const findings: Finding[] = [];
    for (const rule of this.rules_) {
      if (rule.reconsider === undefined) continue;
      let result: Detection | readonly Detection[] | null | undefined;
      try {
        result = rule.reconsider(this.context);
      } catch (error) {
        this.countRuleError(rule, "reconsider", error);
        continue;
      }
      if (result === null || result === undefined) continue;
      for (const detection of Array.isArray(result) ? (result as readonly Detection[]) : [result as Detection]) {
        if (detection.event === undefined) continue;
        const finding = this.toFinding(rule, detection.event, detection);
        if (finding !== undefined) findings.push(finding);
      }
    }
    return findings;
  }

  private index(rules: readonly AnyRule[]): Map<EventKind, Dispatch[]> {
    const ids = new Set<string>();
    const byKind = new Map<EventKind, Dispatch[]>();
    const gates = new Map<EventKind, Map<RuleGate, Dispatch>>();
    for (const rule of rules) {
      if (ids.has(rule.meta.id)) throw new OptionError(`two rules share the id ${JSON.stringify(rule.meta.id)}: give each rule its own id`);
      ids.add(rule.meta.id);
      for (const kind of rule.kinds) {
        const list = byKind.get(kind) ?? [];
        byKind.set(kind, list);
        const membership = rule.gate;
        if (membership === undefined) {
          list.push({ rule, gate: undefined, members: [], byMember: [] });
          continue;
        }
        const ofKind = gates.get(kind) ?? new Map<RuleGate, Dispatch>();
        gates.set(kind, ofKind);
        let entry = ofKind.get(membership.gate);
        if (entry === undefined) {
          entry = { rule: undefined, gate: membership.gate, members: [], byMember: [] };
          ofKind.set(membership.gate, entry);
          list.push(entry);
        }
        entry.members.push(rule);
        entry.byMember[membership.member] = rule;
      }
    }
    return byKind;
  }

  /** A rule whose prepare() throws is counted like one whose evaluate() does, and still runs. */
  private prepare(rule: AnyRule): void {
    try {
      rule.prepare?.(this.context);
    } catch (error) {
      this.countRuleError(rule, "prepare", error);
    }
  }

  /** What the rule returned: null for nothing, one detection, or several. */
  private evaluate(rule: AnyRule, event: SensorEvent): Detection | readonly Detection[] | null {
    try {
      // The index only hands a rule the kinds it subscribed to, which TypeScript cannot
      // see through the Map: this is the one place the event's type is asserted.
      const typed = rule as unknown as { evaluate(event: SensorEvent, ctx: RuleContext): Detection | Detection[] | null | undefined };
      return typed.evaluate(event, this.context) ?? null;
    } catch (error) {
      this.countRuleError(rule, event.kind, error);
      return null;
    }
  }

  private countRuleError(rule: AnyRule, eventKind: string, error: unknown): void {
    const id = rule.meta.id;
    const count = increment(this.counts.ruleErrors, id);
    // Once per rule: a rule that throws on every event must not flood the log.
    if (count === 1) {
      this.logger.warn("rule threw; its errors are counted in stats, only the first is logged", {
        rule: id,
        eventKind,
        error: error instanceof Error ? (error.stack ?? error.message) : String(error),
      });
    }
  }

  private toFinding(rule: AnyRule, evaluated: SensorEvent, detection: Detection): Finding | undefined {
    const id = rule.meta.id;
    const event = detection.event ?? evaluated;
    if (detection.suppressed !== undefined) {
      increment((this.counts.suppressedByRule[id] ??= counter()), detection.suppressed);
      return undefined;
    }
    const foldKey = this.folds !== undefined ? detection.foldKey : undefined;
    // Rule ids never start with NUL: incident keys cannot collide with a rule's own keys.
    const memoryKey = detection.incidentKey !== undefined ? `\u0000incident\u0000${detection.incidentKey}` : `${id}\u0000${foldKey}`;
    if ((foldKey !== undefined || detection.incidentKey !== undefined) && this.folds?.seen(memoryKey, event.timeMs) === true) {
      increment(this.counts.foldedByRule, id);
      this.counts.folded++;
      return undefined;
    }
    increment(this.counts.findingsByRule, id);
    if (this.absorber?.(id, detection, event) === true) return undefined;
    return buildFinding({
      meta: rule.meta,
      event,
      detection,
      processes: this.context.processes,
      hostName: this.hostName,
      createdMs: this.now(),
      ...(foldKey !== undefined ? { foldKey } : {}),
    });
  }
}

/** Keys come from outside (event kinds in a capture, rule ids): no prototype to collide with. */
function counter<T = number>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

/** A plain copy (as structuredClone made): spread defines "__proto__" as an own key, safely. */
function copyCounts(counts: Record<string, number>): Record<string, number> {
  return { ...counts };
}

function increment(counts: Record<string, number>, key: string): number {
  const next = (counts[key] ?? 0) + 1;
  counts[key] = next;
  return next;
}
