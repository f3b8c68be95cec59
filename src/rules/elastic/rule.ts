/**
 * Runs a loaded Elastic EQL rule (loader.ts) as a sockeye rule: each exec becomes an ECS
 * process/start document (ecs-exec.ts), each inet connect a network document
 * (ecs-network.ts) — connects on stdio from the connect hook, outbound TCP connects on every
 * other fd from the relay hook's records — and the compiled query (one event, or a sequence
 * of them) decides.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { CompiledEql, EqlDocument, RequiredValues } from "../../eql/compile.js";
import { SequenceMatcher, type SequenceStats } from "../../eql/sequence.js";
import { defineRule, type Detection, type Rule, type RuleContext } from "../../engine/rule.js";
import type { ConnectEvent, OutboundEvent, SensorEvent } from "../../sensor/events.js";
import { execEcsDocument, execProcessName } from "./ecs-exec.js";
import { connectEcsDocument, isNetworkConnect } from "./ecs-network.js";
import { loadElasticRules, type LoadedElasticRule } from "./loader.js";

/** The event kinds whose documents Elastic rules read. */
export type ElasticEventKind = "exec" | "connect" | "outbound";

/** The sensor event kind behind each EQL category sockeye has documents for. */
const KIND_OF_CATEGORY: Record<string, ElasticEventKind[]> = {
  process: ["exec"],
  network: ["connect", "outbound"],
  any: ["exec", "connect", "outbound"],
};

let lastOutbound: { event: OutboundEvent; asConnect: ConnectEvent } | undefined;

/**
 * An outbound record (a TCP connect on an fd past stdio) as the connect event it is, so one
 * network document builder serves both; the same object for every rule of an engine, which
 * keeps the document cache in ecs-network.ts hitting.
 */
function outboundAsConnect(event: OutboundEvent): ConnectEvent {
  if (lastOutbound?.event !== event) {
    lastOutbound = {
      event,
      asConnect: {
        kind: "connect", timeNs: event.timeNs, timeMs: event.timeMs, task: event.task,
        fd: event.fd, result: event.result, family: event.family, familyNumber: event.family === "inet6" ? 10 : 2,
        socketType: "stream", protocol: 6, source: "tracepoint", remote: event.remote, unixPath: null,
        socketIno: event.socketIno, socketOnFds: [],
      },
    };
  }
  return lastOutbound.asConnect;
}

export type ElasticRule = Rule<ElasticEventKind> & {
  /** A sequence rule's partial-match counters; undefined for a single-event rule. */
  sequenceStats(): SequenceStats | undefined;
};

/** The category and document of an event, or undefined when it makes none. */
function documentOf(event: SensorEvent, ctx: RuleContext): { category: string; doc: EqlDocument } | undefined {
  if (event.kind === "exec") return { category: "process", doc: execEcsDocument(event, ctx.processes) };
  if (event.kind === "connect" && isNetworkConnect(event)) return { category: "network", doc: connectEcsDocument(event, ctx.processes) };
  if (event.kind === "outbound") return { category: "network", doc: connectEcsDocument(outboundAsConnect(event), ctx.processes) };
  return undefined;
}

/**
 * Whether an exec of `name` cannot match any of `queries` (all process queries that pin
 * process.name to other names): most Linux rules pin it, and the exec stream is the busy one.
 */
function excludedByName(queries: readonly { names: RequiredValues | undefined }[], name: () => string): boolean {
  if (queries.length === 0) return true;
  if (queries.some((q) => q.names === undefined)) return false;
  const n = name();
  return !queries.some((q) => q.names!.has(n));
}

/** A sockeye rule that detects when the Elastic query (or sequence) matches. */
export function elasticRule(loaded: LoadedElasticRule): ElasticRule {
  const { compiled } = loaded;
  const queries: CompiledEql[] =
    compiled.kind === "event" ? [compiled] : [...compiled.steps.map((s) => s.query), ...(compiled.until ? [compiled.until.query] : [])];
  const kinds = [...new Set(queries.flatMap((q) => KIND_OF_CATEGORY[q.category] ?? []))];
  const execQueries = queries.filter((q) => q.category === "process" || q.category === "any").map((q) => ({ names: q.requiredValues("process.name") }));
  const skipExec = (event: SensorEvent) => event.kind === "exec" && excludedByName(execQueries, () => execProcessName(event));

  if (compiled.kind === "event") {
    return {
      ...defineRule<ElasticEventKind>({
        meta: loaded.meta,
        kinds,
        evaluate(event, ctx) {
          if (skipExec(event)) return null;
          const made = documentOf(event, ctx);
          return made !== undefined && compiled.test(made.doc) ? {} : null;
        },
      }),
      sequenceStats: () => undefined,
    };
  }

  const matcher = new SequenceMatcher<SensorEvent>(compiled);
  return {
    ...defineRule<ElasticEventKind>({
      meta: loaded.meta,
      kinds,
      evaluate(event, ctx) {
        if (skipExec(event)) return null;
        const made = documentOf(event, ctx);
        if (made === undefined) return null;
        const timeMs = event.timeNs / 1e6;
        const matches = matcher.feed(made.doc, made.category, timeMs, event);
        if (matches.length === 0) return null;
        return matches.map((events): Detection => ({ fields: { sockeye: { sequence: events.map(sequenceEntry) } } }));
      },
    }),
    sequenceStats: () => matcher.stats(),
  };
}

/** What a finding lists for each event of a matched sequence: enough to find it in the log. */
function sequenceEntry(event: SensorEvent): Record<string, unknown> {
  const entry: Record<string, unknown> = { kind: event.kind, pid: event.task.pid, time_ms: event.timeMs };
  if (event.kind === "exec") entry["executable"] = event.filename;
  if ((event.kind === "connect" || event.kind === "outbound") && event.remote !== null) entry["destination"] = { ip: event.remote.address, port: event.remote.port };
  return entry;
}

/** The package root: the nearest directory upwards holding sockeye's package.json. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, "utf8")) as { name?: unknown }).name === "sockeye") return dir;
      } catch {
        // Not ours; keep looking.
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error("sockeye: cannot find the package root (package.json) for rules/elastic");
    dir = parent;
  }
}

/** Directory of the Elastic rules shipped with sockeye (rules/elastic in the package). */
export function builtinElasticRulesDir(): string {
  return join(packageRoot(), "rules", "elastic");
}

/** The shipped Elastic rules, strictly loaded: a shipped rule that cannot run is a bug. */
export function loadBuiltinElasticRules(): ElasticRule[] {
  return loadElasticRules([builtinElasticRulesDir()]).map((result) => elasticRule(result.rule!));
}
