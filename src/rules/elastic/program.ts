/**
 * The Elastic rules of one engine as one program: what every rule asks of an event is worked
 * out once per event, not once per rule (exec, fork and exit are the busy streams, and with
 * Elastic's Linux rules loaded ~200 rules see each):
 *
 * - which rules' process queries accept the event's process name (and, for an exec, its
 *   executable and arguments): most pin process.name to names or name patterns, and when none
 *   accepts, the event's document is never built;
 * - the ECS document: an exec becomes a process/start document (ecs-exec.ts), each inet
 *   connect a network document (ecs-network.ts) — connects on stdio from the connect hook,
 *   outbound TCP connects on every other fd from the relay hook's records —, each accepted
 *   connection (when the sensor reports them) a network document of its own, each fork, exit
 *   and process already running at start a process document of its own;
 * - which queries the document can match at all (query-index.ts).
 *
 * The engine runs every rule on one event before the next, so one event's answers are the
 * only ones worth keeping.
 */
import type { CompiledEql, EqlDocument } from "../../eql/compile.js";
import type { RuleContext } from "../../engine/rule.js";
import type { ConnectEvent, OutboundEvent, SensorEvent } from "../../sensor/events.js";
import { buildExecEcsDocument, buildLifecycleEcsDocument, execIdentity, lifecycleProcessName } from "./ecs-exec.js";
import { buildChangeEcsDocument, changeProcessName } from "./ecs-change.js";
import { buildAcceptEcsDocument, buildConnectEcsDocument, isNetworkConnect } from "./ecs-network.js";
import { QueryIndex } from "./query-index.js";

export interface ProgramDocument {
  category: "process" | "network";
  doc: EqlDocument;
}

/** An outbound record (a TCP connect on an fd past stdio) as the connect event it is, so one network document builder serves both. */
function outboundAsConnect(event: OutboundEvent): ConnectEvent {
  return {
    kind: "connect", timeNs: event.timeNs, timeMs: event.timeMs, task: event.task,
    fd: event.fd, result: event.result, family: event.family, familyNumber: event.family === "inet6" ? 10 : 2,
    socketType: "stream", protocol: 6, source: "tracepoint", remote: event.remote, unixPath: null,
    socketIno: event.socketIno, socketOnFds: [],
  };
}

/** The category and document of an event, or undefined when it makes none. */
function documentOf(event: SensorEvent, ctx: RuleContext): ProgramDocument | undefined {
  switch (event.kind) {
    case "exec":
      return { category: "process", doc: buildExecEcsDocument(event, ctx.processes) };
    case "connect":
      return isNetworkConnect(event) ? { category: "network", doc: buildConnectEcsDocument(event, ctx.processes) } : undefined;
    case "outbound":
      return { category: "network", doc: buildConnectEcsDocument(outboundAsConnect(event), ctx.processes) };
    case "accept":
      return { category: "network", doc: buildAcceptEcsDocument(event, ctx.processes) };
    case "fork":
      // A new thread is no new process: Defend's fork events are about processes.
      return event.task.tid === event.task.pid ? { category: "process", doc: buildLifecycleEcsDocument(event, ctx.processes) } : undefined;
    case "exit":
    case "already_running":
      return { category: "process", doc: buildLifecycleEcsDocument(event, ctx.processes) };
    case "cred_change":
      return { category: "process", doc: buildChangeEcsDocument(event, ctx.processes) };
    default:
      return undefined;
  }
}

/** Fields of a process event known before its document is built (execIdentity), most telling first. */
const EXEC_PREFILTER_FIELDS = ["process.name", "process.executable", "process.args"];

/** What a process event's document will hold in its prefilter fields; undefined for other events. */
function prefilterDocument(event: SensorEvent, ctx: RuleContext): EqlDocument | undefined {
  switch (event.kind) {
    case "exec":
      return { process: execIdentity(event, ctx.processes) };
    case "fork":
    case "exit":
    case "already_running":
      return { process: { name: lifecycleProcessName(event, ctx.processes) } };
    case "cred_change":
      return { process: { name: changeProcessName(event, ctx.processes) } };
    default:
      return undefined;
  }
}

/**
 * Rules past a prefilter up to which each is tested on its own anchors (QueryIndex.holds)
 * rather than marking the whole index: a /bin/true exec leaves ~16 of Elastic's Linux rules,
 * a shell's several dozen, each of whose holds() folds and tests the document's values again.
 */
const FEW_RULES_LEFT = 24;

export class ElasticProgram {
  /** Every query, by the document's fields; asked by rule. */
  private readonly index: QueryIndex;
  /** The process queries by what an exec's prefilter document holds, and by process.name alone for the other process events; asked by rule. */
  private readonly execPrefilter: QueryIndex;
  private readonly namePrefilter: QueryIndex;
  private event: SensorEvent | undefined;
  private prefilter: { index: QueryIndex; doc: EqlDocument } | undefined;
  /** Whether the event's prefilter let at most FEW_RULES_LEFT rules through. */
  private fewLeft = false;
  /** The event's document: null until built. */
  private made: ProgramDocument | undefined | null = null;

  /** `rules[i]`: the queries of rule i (its one query, or its sequence's steps). */
  constructor(rules: readonly (readonly CompiledEql[])[]) {
    const ruleOf = rules.flatMap((queries, rule) => queries.map(() => rule));
    const queries = rules.flat();
    this.index = new QueryIndex(queries, undefined, ruleOf);
    const processQueries = queries.map((q) => (q.category === "process" || q.category === "any" ? q : undefined));
    this.execPrefilter = new QueryIndex(processQueries, EXEC_PREFILTER_FIELDS, ruleOf);
    this.namePrefilter = new QueryIndex(processQueries, ["process.name"], ruleOf);
  }

  /**
   * The rules that can match `event`, ascending (RuleGate.admit): those its prefilter lets
   * through, the same test documentFor makes first; undefined (all) for events without one.
   */
  admit(event: SensorEvent, ctx: RuleContext): readonly number[] | undefined {
    this.begin(event, ctx);
    const prefilter = this.prefilter;
    return prefilter === undefined ? undefined : prefilter.index.candidates(event, prefilter.doc);
  }

  /** The document of `event` when rule `rule` can match it; undefined when it cannot. */
  documentFor(rule: number, event: SensorEvent, ctx: RuleContext): ProgramDocument | undefined {
    this.begin(event, ctx);
    const prefilter = this.prefilter;
    if (prefilter !== undefined && !prefilter.index.isCandidate(event, prefilter.doc, rule)) return undefined;
    if (this.made === null) this.made = documentOf(event, ctx);
    const made = this.made;
    if (made === undefined) return undefined;
    // When a prefilter left a few rules, each is tested on its own anchors; when it left many
    // (a shell's exec reaches dozens), the whole index is marked once for all of them.
    const candidate = this.fewLeft ? this.index.holds(made.doc, rule) : this.index.isCandidate(event, made.doc, rule);
    return candidate ? made : undefined;
  }

  /** What every rule asks of `event` first, worked out once. */
  private begin(event: SensorEvent, ctx: RuleContext): void {
    if (event === this.event) return;
    this.event = event;
    this.made = null;
    const doc = prefilterDocument(event, ctx);
    this.prefilter = doc === undefined ? undefined : { index: event.kind === "exec" ? this.execPrefilter : this.namePrefilter, doc };
    this.fewLeft = this.prefilter !== undefined && this.prefilter.index.candidateCount(event, this.prefilter.doc) <= FEW_RULES_LEFT;
  }
}
