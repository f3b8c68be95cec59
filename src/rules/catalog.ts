/**
 * The rule catalog: everything `sockeye run` and `sockeye rules` load, with the status of
 * each rule. Built-in TypeScript rules (builtin.ts), then the Elastic rules shipped in
 * rules/elastic, then the user's rule files and folders, in the order given.
 *
 * A user file whose rule_id equals a shipped rule's replaces it (so a newer copy of a rule
 * from detection-rules wins over ours); two user files with the same rule_id are an error
 * (strict) or the second is skipped (lenient). Every rule that does not run says why.
 */
import type { AnyRule } from "../engine/rule.js";
import { OPT_IN_RULES, builtinRules, type BuiltinRuleOptions } from "./builtin.js";
import { DEFAULT_TRC101_PROFILE, TRC101_META } from "./trc-101-stdio-over-socket.js";
import { ElasticRuleError, loadElasticRules, type ElasticRuleLoadResult, type LoadedElasticRule } from "./elastic/loader.js";
import { builtinElasticRulesDir, elasticRules } from "./elastic/rule.js";
import { SHAPES, shapesFor } from "./elastic/shapes.js";
import { ENTRY_LEADER_NOTE } from "./elastic/ecs-identity.js";
import { ACCEPT_NOTE } from "./elastic/ecs-network.js";
import type { CompiledEql, CompiledQuery } from "../eql/compile.js";

export interface RuleStatus {
  /** rule.id of findings; absent when the file could not be read as a rule. */
  id?: string;
  name?: string;
  /** "builtin" for TypeScript rules, else the path of the rule file. */
  source: string;
  kind: "typescript" | "elastic";
  status: "runs" | "skipped" | "replaced";
  /** Why it is skipped or replaced: one line. */
  reason?: string;
  /** The profile a rule that has several runs with (TRC-101: "precise" or "tracee"). */
  profile?: string;
  /**
   * Fields the rule reads that sockeye's exec view never carries: always missing, so a
   * condition on them never holds (and `not` of it always does). Absent when none.
   */
  unprovidedFields?: string[];
  /**
   * Set when the rule runs but can never fire on sockeye's documents: a condition it needs
   * reads a field sockeye never fills or a value it never emits (event.action "end", …).
   */
  neverFires?: string;
  /** Fields the rule reads that sockeye gives only in part (which part, and when). */
  notes?: string[];
}

export interface RuleCatalogOptions extends BuiltinRuleOptions {
  /** Extra Elastic rule files or folders of *.toml (not recursive). */
  rulePaths?: readonly string[];
  /** true: a rule file that cannot run is skipped with its reason; false: loading throws. */
  lenient?: boolean;
  /** false: leave out the Elastic rules shipped in rules/elastic (default true). */
  builtinElastic?: boolean;
}

export interface RuleCatalog {
  /** The rules to hand to the Engine, ids unique. */
  rules: AnyRule[];
  /** One entry per rule or rule file considered, runnable or not. */
  statuses: RuleStatus[];
}

/** Whether `query` can hold on at least one kind of document of its category. */
function queryCanFire(query: CompiledEql): boolean {
  return shapesFor(query).length > 0;
}

/** Fields the rule reads that no document of its categories carries, and why it can never fire (if so). */
function coverage(compiled: CompiledQuery): { unprovided: string[]; neverFires?: string } {
  const queries = compiled.kind === "event" ? [compiled] : compiled.steps.map((step) => step.query);
  const categories = compiled.kind === "event" ? [compiled.category] : compiled.categories;
  const provided = new Set(categories.flatMap((category) => (SHAPES[category] ?? []).flatMap((shape) => [...shape.fields])));
  const unprovided = compiled.fields.filter((field) => !provided.has(field));
  const blocked = queries.findIndex((query) => !queryCanFire(query));
  if (blocked >= 0) {
    const which = compiled.kind === "event" ? "its condition" : `step ${blocked + 1}`;
    return { unprovided, neverFires: `${which} needs a field or value sockeye never provides` };
  }
  if (compiled.kind === "sequence") {
    // A document missing a join key (one not marked `?`) joins no sequence.
    for (const [k, step] of compiled.steps.entries()) {
      const shapes = shapesFor(step.query);
      const missing = step.requiredKeyFields.find((field) => !shapes.some((shape) => shape.fields.has(field)));
      if (missing !== undefined) return { unprovided, neverFires: `step ${k + 1}'s join key ${missing} is a field sockeye never provides` };
    }
  }
  return { unprovided };
}

/** Whether a step of `compiled` can match an accepted connection's document. */
function readsAccepts(compiled: CompiledQuery): boolean {
  const queries = compiled.kind === "event" ? [compiled] : compiled.steps.map((step) => step.query);
  return queries.some((query) => shapesFor(query).some((shape) => shape.kinds.includes("accept")));
}

function elasticStatus(result: ElasticRuleLoadResult): RuleStatus {
  const { unprovided, neverFires } = result.rule !== undefined ? coverage(result.rule.compiled) : { unprovided: [], neverFires: undefined };
  const notes = [
    ...(result.rule?.compiled.fields.some((field) => field.startsWith("process.entry_leader.")) ? [ENTRY_LEADER_NOTE] : []),
    ...(result.rule !== undefined && neverFires === undefined && readsAccepts(result.rule.compiled) ? [ACCEPT_NOTE] : []),
  ];
  return {
    ...(result.rule ? { id: result.rule.meta.id, name: result.rule.meta.name } : {}),
    source: result.source,
    kind: "elastic",
    status: result.status,
    ...(result.reason !== undefined ? { reason: result.reason } : {}),
    ...(unprovided.length > 0 ? { unprovidedFields: unprovided } : {}),
    ...(neverFires !== undefined ? { neverFires } : {}),
    ...(notes.length > 0 ? { notes } : {}),
  };
}

/** Loads the catalog. Strict (default): throws ElasticRuleError for the first bad file. */
export function loadRuleCatalog(options: RuleCatalogOptions = {}): RuleCatalog {
  const lenient = options.lenient ?? false;
  const typescript = builtinRules(options);
  const statuses: RuleStatus[] = typescript.map((rule) => ({
    id: rule.meta.id,
    name: rule.meta.name,
    source: rule.meta.source,
    kind: "typescript",
    status: "runs",
    ...(rule.meta.id === TRC101_META.id ? { profile: options.trc101?.profile ?? DEFAULT_TRC101_PROFILE } : {}),
  }));
  // An opt-in rule left off is listed with why, so it is never silently missing.
  const running = new Set(typescript.map((rule) => rule.meta.id));
  for (const optIn of OPT_IN_RULES) {
    if (!running.has(optIn.id)) statuses.push({ id: optIn.id, source: "builtin", kind: "typescript", status: "skipped", reason: optIn.reason });
  }
  // Shipped rules are always loaded strictly: a shipped rule that cannot run is a bug.
  const shipped = options.builtinElastic === false ? [] : loadElasticRules([builtinElasticRulesDir()]);
  const user = loadElasticRules(options.rulePaths ?? [], { lenient });

  const builtinIds = new Set(typescript.map((rule) => rule.meta.id));
  const userById = new Map<string, ElasticRuleLoadResult>();
  const userStatuses: RuleStatus[] = [];
  for (const result of user) {
    const id = result.rule?.meta.id;
    if (id === undefined) {
      userStatuses.push(elasticStatus(result));
      continue;
    }
    const earlier = userById.get(id)?.source ?? (builtinIds.has(id) ? "builtin" : undefined);
    if (earlier !== undefined) {
      const problem = `rule_id ${id} is already loaded from ${earlier}`;
      if (!lenient) throw new ElasticRuleError(result.source, problem);
      userStatuses.push({ ...elasticStatus(result), status: "skipped", reason: `${result.source}: ${problem}` });
      continue;
    }
    userById.set(id, result);
    userStatuses.push(elasticStatus(result));
  }

  const rules: AnyRule[] = [...typescript];
  const elastic: LoadedElasticRule[] = [];
  for (const result of shipped) {
    const id = result.rule!.meta.id;
    const replacement = userById.get(id);
    if (replacement !== undefined) {
      statuses.push({ ...elasticStatus(result), status: "replaced", reason: `replaced by ${replacement.source}` });
      continue;
    }
    statuses.push(elasticStatus(result));
    elastic.push(result.rule!);
  }
  for (const result of userById.values()) elastic.push(result.rule!);
  rules.push(...elasticRules(elastic));
  statuses.push(...userStatuses);
  return { rules, statuses };
}

/**
 * Whether one of `rules` reads accepted connections (connection_accepted documents): the
 * sensor reports accepts only then (SensorOptions.acceptRecords), as a busy server accepts
 * thousands a second and no built-in rule needs them.
 */
export function readsAcceptedConnections(rules: readonly AnyRule[]): boolean {
  return rules.some((rule) => rule.kinds.includes("accept"));
}
