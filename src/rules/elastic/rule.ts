/**
 * Runs loaded Elastic EQL rules (loader.ts) as sockeye rules: each event's ECS document
 * (program.ts: exec, fork, exit, already_running, cred_change, connect, outbound) goes to the rules whose
 * queries can match it, and the compiled query (one event, or a sequence of them) decides.
 */
import { packageRoot } from "../../host/files.js";
import { join } from "node:path";
import type { CompiledEql, CompiledQuery } from "../../eql/compile.js";
import type { EqlExpr } from "../../eql/parser.js";
import { SequenceMatcher, type SequenceStats } from "../../eql/sequence.js";
import { defineRule, type Detection, type Rule, type RuleContext, type RuleGate } from "../../engine/rule.js";
import type { SensorEvent } from "../../sensor/events.js";
import { captureEnvVars } from "./ecs-identity.js";
import { loadElasticRules, type LoadedElasticRule } from "./loader.js";
import { ElasticProgram, type ProgramDocument } from "./program.js";
import { shapesFor, type ElasticEventKind } from "./shapes.js";

export type { ElasticEventKind } from "./shapes.js";

export type ElasticRule = Rule<ElasticEventKind> & {
  /** A sequence rule's partial-match counters; undefined for a single-event rule. */
  sequenceStats(): SequenceStats | undefined;
};

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
  for (const q of queriesOf(query)) walk(q.where);
  return names;
}

/** The queries of a rule: its one query, or its sequence's steps and until step (each once). */
function queriesOf(compiled: CompiledQuery): CompiledEql[] {
  return compiled.kind === "event" ? [compiled] : [...new Set([...compiled.steps.map((s) => s.query), ...(compiled.until ? [compiled.until.query] : [])])];
}

/** A sockeye rule that detects when the Elastic query (or sequence) matches. */
export function elasticRule(loaded: LoadedElasticRule): ElasticRule {
  return elasticRules([loaded])[0]!;
}

/**
 * Rules for `loaded` that share one ElasticProgram: what every rule asks of an event is
 * worked out once, and each rule tests the event's document only when one of its queries is
 * a candidate.
 */
export function elasticRules(loaded: readonly LoadedElasticRule[]): ElasticRule[] {
  const queries = loaded.map((rule) => queriesOf(rule.compiled));
  const program = new ElasticProgram(queries);
  // The engine asks the program once per event which rules can match it (a /bin/true exec:
  // ~15 of ~200) and runs only those.
  const gate: RuleGate = { admit: (event, ctx) => program.admit(event, ctx) };
  return loaded.map((rule, number) => ({
    ...programRule(rule, queries[number]!, (event, ctx) => program.documentFor(number, event, ctx)),
    gate: { gate, member: number },
  }));
}

function programRule(loaded: LoadedElasticRule, queries: CompiledEql[], documentFor: (event: SensorEvent, ctx: RuleContext) => ProgramDocument | undefined): ElasticRule {
  const { compiled } = loaded;
  // Only the events whose documents a step can match: a rule about execs needs no fork or exit.
  // A sequence with a step no document can match never completes: it needs no event at all
  // (`sockeye rules` says it never fires).
  const neverCompletes = compiled.kind === "sequence" && compiled.steps.some((step) => shapesFor(step.query).length === 0);
  const kinds = neverCompletes ? [] : [...new Set(queries.flatMap((q) => shapesFor(q).flatMap((shape) => shape.kinds)))];
  if (compiled.fields.includes("process.env_vars")) captureEnvVars(envVarNamesOf(compiled));
  if (compiled.kind === "event") {
    return {
      ...defineRule<ElasticEventKind>({
        meta: loaded.meta,
        kinds,
        evaluate(event, ctx) {
          const made = documentFor(event, ctx);
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
        const made = documentFor(event, ctx);
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
  if (event.kind === "cred_change") entry["ids"] = { uid: event.ids.uid, euid: event.ids.euid, gid: event.ids.gid, egid: event.ids.egid };
  if ((event.kind === "connect" || event.kind === "outbound") && event.remote !== null) entry["destination"] = { ip: event.remote.address, port: event.remote.port };
  if (event.kind === "accept") entry["source"] = { ip: event.remote.address, port: event.remote.port };
  return entry;
}

/** Directory of the Elastic rules shipped with sockeye (rules/elastic in the package). */
export function builtinElasticRulesDir(): string {
  return join(packageRoot("sockeye"), "rules", "elastic");
}

/** The shipped Elastic rules, strictly loaded: a shipped rule that cannot run is a bug. */
export function loadBuiltinElasticRules(): ElasticRule[] {
  return elasticRules(loadElasticRules([builtinElasticRulesDir()]).map((result) => result.rule!));
}
