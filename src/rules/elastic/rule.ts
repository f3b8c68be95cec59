/**
 * Runs a loaded Elastic EQL rule (loader.ts) as a sockeye rule: each exec becomes an ECS
 * process/start document (ecs-exec.ts), each inet connect a network document
 * (ecs-network.ts) — connects on stdio from the connect hook, outbound TCP connects on every
 * other fd from the relay hook's records —, each fork, exit and process already running at
 * start a process document of its own, and the compiled query (one event, or a sequence of
 * them) decides.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { assertInternal } from "../../errors.js";
import type { CompiledEql, CompiledQuery, EqlDocument, RequiredValues } from "../../eql/compile.js";
import type { EqlExpr } from "../../eql/parse.js";
import { SequenceMatcher, type SequenceStats } from "../../eql/sequence.js";
import { defineRule, type Detection, type Rule, type RuleContext } from "../../engine/rule.js";
import type { ConnectEvent, OutboundEvent, SensorEvent } from "../../sensor/events.js";
import { execEcsDocument, execProcessName, lifecycleEcsDocument, lifecycleProcessName } from "./ecs-exec.js";
import { captureEnvVars } from "./ecs-identity.js";
import { connectEcsDocument, isNetworkConnect } from "./ecs-network.js";
import { loadElasticRules, type LoadedElasticRule } from "./loader.js";
import { shapesFor, type ElasticEventKind } from "./shapes.js";

export type { ElasticEventKind } from "./shapes.js";

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
  // A new thread is no new process: Defend's fork events are about processes.
  if (event.kind === "fork" && event.task.tid === event.task.pid) return { category: "process", doc: lifecycleEcsDocument(event, ctx.processes) };
  if (event.kind === "exit" || event.kind === "already_running") return { category: "process", doc: lifecycleEcsDocument(event, ctx.processes) };
  return undefined;
}

/**
 * The environment variable names `query` compares process.env_vars with: the text before
 * `=` of each value (`"HISTFILE=/dev/null"`, `"*GLIBC_TUNABLES=glibc.*"` with its leading
 * wildcard dropped) when that text is a plain variable name.
 */
export function envVarNamesOf(query: CompiledQuery): Set<string> {
  const names = new Set<string>();
  const add = (value: unknown) => {
    if (typeof value !== "string") return;
    const name = value.replace(/^\*+/, "").split("=")[0]!;
    if (value.replace(/^\*+/, "").includes("=") && /^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) names.add(name);
  };
  const isEnv = (v: { type: string; path?: string }) => v.type === "field" && v.path === "process.env_vars";
  const walk = (expr: EqlExpr): void => {
    switch (expr.type) {
      case "and":
      case "or":
        expr.items.forEach(walk);
        return;
      case "not":
        walk(expr.expr);
        return;
      case "compare":
        if (isEnv(expr.left) && expr.right.type === "literal") add(expr.right.value);
        if (isEnv(expr.right) && expr.left.type === "literal") add(expr.left.value);
        return;
      case "in":
        if (isEnv(expr.left)) expr.values.forEach(add);
        return;
      case "wildcard":
        if (isEnv(expr.left)) expr.patterns.forEach(add);
        return;
      default:
        return;
    }
  };
  const queries = query.kind === "event" ? [query] : [...query.steps.map((s) => s.query), ...(query.until ? [query.until.query] : [])];
  for (const q of queries) walk(q.where);
  return names;
}

/**
 * Whether a process document named `name` cannot match any of `queries` (all process queries
 * that pin process.name to other names): most Linux rules pin it, and exec, fork and exit are
 * the busy streams.
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
  // Only the events whose documents a step can match: a rule about execs needs no fork or exit.
  const kinds = [...new Set(queries.flatMap((q) => shapesFor(q).flatMap((shape) => shape.kinds)))];
  if (compiled.fields.includes("process.env_vars")) captureEnvVars(envVarNamesOf(compiled));
  const processQueries = queries.filter((q) => q.category === "process" || q.category === "any").map((q) => ({ names: q.requiredValues("process.name") }));
  // A process document (exec, fork, exit, already_running) whose name no process query accepts
  // is skipped before it is built; network documents always go on.
  const skipUnnamed = (event: SensorEvent, ctx: RuleContext) => {
    switch (event.kind) {
      case "exec":
        return excludedByName(processQueries, () => execProcessName(event));
      case "fork":
      case "exit":
      case "already_running":
        return excludedByName(processQueries, () => lifecycleProcessName(event, ctx.processes));
      default:
        return false;
    }
  };

  if (compiled.kind === "event") {
    return {
      ...defineRule<ElasticEventKind>({
        meta: loaded.meta,
        kinds,
        evaluate(event, ctx) {
          if (skipUnnamed(event, ctx)) return null;
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
        if (skipUnnamed(event, ctx)) return null;
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
  if (event.kind === "already_running" && event.executable !== "") entry["executable"] = event.executable;
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
    assertInternal(parent !== dir, "cannot find the package root (package.json) for rules/elastic");
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
