/**
 * The rule API, public: sockeye's own rules and a user's agent use the same one.
 *
 * A rule names the event kinds it consumes (the engine indexes rules by kind), gets each
 * such event with a read-only context, and returns zero or more detections. The engine
 * turns a detection into a finding: the ECS document of docs/design.md §5 (rule, threat,
 * process, user, host, ...), with the detection's own fields merged in.
 */
import type { SequenceStats } from "../eql/sequence.js";
import type { HostView } from "../host/host-view.js";
import type { ProcessView } from "../process/process-view.js";
import type { EventKind, EventOfKind, SensorEvent } from "../sensor/events.js";

/** MITRE ATT&CK mapping, in the shape ECS `threat` uses. */
export interface ThreatTechnique {
  id: string;
  name: string;
  reference?: string;
  subtechnique?: { id: string; name: string; reference?: string }[];
}
export interface ThreatEntry {
  framework: "MITRE ATT&CK";
  tactic: { id: string; name: string; reference?: string };
  technique?: ThreatTechnique[];
}

export type Severity = "low" | "medium" | "high" | "critical";

export interface RuleMeta {
  /** rule.id in findings: "TRC-101", an Elastic rule_id, or a user's own id. */
  id: string;
  name: string;
  description: string;
  version?: string;
  severity: Severity;
  /** 0-100, as Elastic's risk_score. */
  riskScore?: number;
  threat: ThreatEntry[];
  tags?: string[];
  /** Where the rule came from: "builtin", or the path of the file it was loaded from. */
  source: string;
  /** Metadata a seed gives that has no ECS home (Tracee's Properties, EventName...). */
  extra?: Record<string, unknown>;
}

export interface RuleContext {
  processes: ProcessView;
  /**
   * The host the events come from (/proc and files), the only way a rule reads it: the live
   * host in a daemon, OFFLINE_HOST in a replay, a fake in a test.
   */
  host: HostView;
  /** Wall-clock ms; injectable so replays and tests are deterministic. */
  now(): number;
}

export interface Detection {
  /** Nested ECS fields merged into the finding (destination, finding, ...). */
  fields?: Record<string, unknown>;
  /**
   * Detections with the same rule and fold key collapse into one finding (for example
   * one reverse shell's many dups onto fds 0, 1 and 2). Absent: never folded.
   */
  foldKey?: string;
  /**
   * Like foldKey, across rules: detections of any rule with the same incident key collapse
   * into the first finding (one reverse shell caught by two rules is one incident). Takes
   * the place of foldKey for folding when both are set.
   */
  incidentKey?: string;
  /**
   * Set when the rule matched but an allowlist (or similar policy) says not to alert: the
   * engine emits no finding and counts the reason, so suppression is visible, never silent.
   */
  suppressed?: string;
  /**
   * The event the finding is about, when it is not the one being evaluated: a candidate a
   * rule held (until its process executed something) and resolves on a later event.
   */
  event?: SensorEvent;
}

/**
 * What a rule with memory holds, and what its bounds let go: for the stats line, the metrics
 * and the daemon's `stopped` line. Now-values (held, pending, indexed) and totals since the
 * rule was made (evicted, expired, incomplete).
 */
export interface RuleState {
  /** Entries the rule keeps now (held triggers, remembered sockets, ...). */
  held: number;
  /** Candidates waiting for more events before a verdict. */
  pending: number;
  /** Index entries (endpoint → process) kept to find relays. */
  indexed: number;
  /** Entries dropped to stay within a count bound; a pending candidate dropped is among them. */
  evicted: number;
  /** Entries dropped at their age bound. */
  expired: number;
  /** Looks at the host that stopped at their budget (fds read, bytes hashed). */
  incomplete: number;
  /** Candidates dropped at a count bound before any verdict: shells that were never judged. */
  abandoned: number;
}

export interface Rule<K extends EventKind = EventKind> {
  meta: RuleMeta;
  kinds: readonly K[];
  evaluate(event: EventOfKind<K>, ctx: RuleContext): Detection | Detection[] | null | undefined;
  /**
   * Called once, before the first event, with the context events will come with: for a rule
   * that takes a look at the host as observation begins (RELAY-001 reads the TCP sockets that
   * already exist), so the look does not hold up the first event.
   */
  prepare?(ctx: RuleContext): void;
  /**
   * Called between events when the host answered a look that had run past the time the rule
   * could wait for it (the daemon's host reads run in a worker: worker-host.ts): a rule that
   * holds candidates it could not judge for want of that look judges them again now, so a
   * shell is not lost to a busy host. Each detection names its candidate in `event`; one
   * without is dropped.
   */
  reconsider?(ctx: RuleContext): Detection | Detection[] | null | undefined;
  /**
   * A rule that matches sequences of events (an Elastic EQL sequence) reports the partial
   * matches it holds and drops, for the stats line and the metrics; undefined otherwise.
   */
  sequenceStats?(): SequenceStats | undefined;
  /** A rule that keeps state across events reports it; undefined for a stateless one. */
  state?(): RuleState;
  /**
   * Rules made together that share one judgement of each event (RuleGate): the engine asks
   * the gate once per event and runs only the members it admits. Absent: run on every event
   * of its kinds.
   */
  gate?: GateMembership;
}

/**
 * What rules made together (Elastic's rules of one program) know about an event before any of
 * them runs: which of them can match it. With Elastic's Linux rules loaded, ~200 rules take
 * execs and a /bin/true exec can match ~15: the engine asks once and runs those, instead of
 * calling every rule to hear it say no.
 */
export interface RuleGate {
  /**
   * The member numbers that can match `event`, ascending; undefined: every member. It must
   * never leave out a member that would return a detection (or change its state) on `event`.
   */
  admit(event: SensorEvent, ctx: RuleContext): readonly number[] | undefined;
}

/** A rule's place behind a gate: the gate every member shares (the same object), and its own number there. */
export interface GateMembership {
  gate: RuleGate;
  member: number;
}

/** Declares a rule; a typo in `kinds` or an event field is a compile error. */
export function defineRule<K extends EventKind>(rule: Rule<K>): Rule<K> {
  return rule;
}

/**
 * A rule of any kind(s), as the engine stores it: every `Rule<K>` is assignable to it,
 * including rules of several kinds (`Rule<"connect" | "socket_dup">`), which a union of
 * per-kind rules would not accept. `evaluate` takes `never` because only the engine, which
 * indexes rules by their `kinds`, knows which event a stored rule may be given.
 */
export interface AnyRule {
  meta: RuleMeta;
  kinds: readonly EventKind[];
  evaluate(event: never, ctx: RuleContext): Detection | Detection[] | null | undefined;
  prepare?(ctx: RuleContext): void;
  reconsider?(ctx: RuleContext): Detection | Detection[] | null | undefined;
  sequenceStats?(): SequenceStats | undefined;
  state?(): RuleState;
  gate?: GateMembership;
}

export type { SensorEvent };
export type { SequenceStats } from "../eql/sequence.js";
export type { ProcessInfo, ProcessView } from "../process/process-view.js";
export type { HostView } from "../host/host-view.js";
