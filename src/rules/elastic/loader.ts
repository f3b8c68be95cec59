/**
 * Loads Elastic detection-rules TOML files (the format of github.com/elastic/detection-rules)
 * and compiles their EQL query (src/eql): single events and sequences over the categories
 * sockeye makes documents for (process: execs, network: connects, any).
 *
 * A file that cannot run (TOML syntax error, missing query, a language other than eql, a
 * construct outside the EQL subset, another category such as file) is, in strict
 * mode, an `ElasticRuleError` with a one-line message `<file>[:line]: <problem>`; in lenient
 * mode a result with status "skipped" and that message as its reason.
 */
import { join } from "node:path";
import { parse as parseToml, TomlError } from "smol-toml";
import { z } from "zod";
import { EXIT_BAD_INPUT, SockeyeError } from "../../errors.js";
import { FileReadError, readRegularTextFile } from "../../service/regular-file.js";
import { isDirectory, listFolder } from "../../host/files.js";
import { compileEqlQuery, EqlError, type CompiledQuery } from "../../eql/compile.js";
import type { RuleMeta, ThreatEntry } from "../../engine/rule.js";
import { isProcReadField } from "./ecs-identity.js";

/** A rule file that cannot run. `message` is `<file>[:line]: <problem>`, one line. */
export class ElasticRuleError extends SockeyeError {
  readonly file: string;
  readonly line: number | undefined;
  readonly problem: string;
  constructor(file: string, problem: string, line?: number) {
    const oneLine = problem.replace(/\s*\n\s*/g, " ").trim();
    super(`${file}${line !== undefined ? `:${line}` : ""}: ${oneLine}`, "SOCKEYE_RULE_FILE", EXIT_BAD_INPUT);
    this.file = file;
    this.line = line;
    this.problem = oneLine;
  }
}

/** Elastic's rule files are a few KiB; past this the path is surely not one. */
const MAX_RULE_FILE_BYTES = 1024 * 1024;

export interface LoadedElasticRule {
  meta: RuleMeta;
  query: string;
  compiled: CompiledQuery;
}

export interface ElasticRuleLoadResult {
  /** The file's path as given. */
  source: string;
  status: "runs" | "skipped";
  /** Why it was skipped: the ElasticRuleError message. */
  reason?: string;
  rule?: LoadedElasticRule;
}

export interface ElasticLoadOptions {
  /** true: a file that cannot run is skipped with a reason; false (default): it throws. */
  lenient?: boolean;
}

const reference = z.string().optional();
const threatSchema = z.object({
  framework: z.literal("MITRE ATT&CK"),
  tactic: z.object({ id: z.string(), name: z.string(), reference }),
  technique: z
    .array(
      z.object({
        id: z.string(),
        name: z.string(),
        reference,
        subtechnique: z.array(z.object({ id: z.string(), name: z.string(), reference })).optional(),
      }),
    )
    .optional(),
});

const ruleFileSchema = z.object({
  metadata: z.record(z.unknown()).optional(),
  rule: z
    .object({
      rule_id: z.string().min(1),
      name: z.string().min(1),
      description: z.string(),
      risk_score: z.number().int().min(0).max(100).optional(),
      severity: z.enum(["low", "medium", "high", "critical"]),
      tags: z.array(z.string()).optional(),
      threat: z.array(threatSchema).optional(),
      language: z.string().optional(),
      type: z.string(),
      query: z.string().optional(),
      version: z.union([z.number(), z.string()]).optional(),
    })
    .passthrough(),
});

/** Categories sockeye makes documents for (rule.ts maps each to its event kinds). */
const SUPPORTED_CATEGORIES: ReadonlySet<string> = new Set(["process", "network", "any"]);

/** Keys copied into RuleMeta itself; the rest of [rule] goes to meta.extra. */
const META_KEYS = new Set(["rule_id", "name", "description", "risk_score", "severity", "tags", "threat", "version"]);

function lineOf(text: string, index: number): number {
  let line = 1;
  for (let i = 0; i < index; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** File line of the query's first line (TOML drops the newline after an opening '''). */
function queryStartLine(text: string, query: string): number | undefined {
  const keyMatch = /^query\s*=\s*('''|"""|'|")(\r?\n)?/m.exec(text);
  if (keyMatch === null) return undefined;
  const index = keyMatch.index + keyMatch[0].length;
  // Only trust the mapping when the file holds the query verbatim at that place.
  if (!text.startsWith(query.slice(0, Math.min(query.length, 40)), index)) return undefined;
  return lineOf(text, index);
}

function parseRuleText(source: string, text: string): LoadedElasticRule {
  let toml: unknown;
  try {
    toml = parseToml(text);
  } catch (error) {
    if (error instanceof TomlError) {
      const first = error.message.split("\n")[0] ?? "syntax error";
      throw new ElasticRuleError(source, `TOML syntax error: ${first}`, error.line);
    }
    throw new ElasticRuleError(source, `TOML syntax error: ${(error as Error).message}`);
  }

  const rawRule = (toml as { rule?: { query?: unknown } }).rule;
  if (rawRule !== undefined && typeof rawRule === "object" && rawRule.query === undefined) {
    throw new ElasticRuleError(source, "missing rule.query");
  }
  const checked = ruleFileSchema.safeParse(toml);
  if (!checked.success) {
    const issue = checked.error.issues[0]!;
    throw new ElasticRuleError(source, `invalid rule file: ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  }
  const { rule, metadata } = checked.data;

  const language = rule.language ?? (rule.type === "eql" ? "eql" : undefined);
  if (language !== "eql") throw new ElasticRuleError(source, `language ${JSON.stringify(language ?? "(none)")} is not supported (only eql)`);
  if (rule.type !== "eql") throw new ElasticRuleError(source, `rule type ${JSON.stringify(rule.type)} is not supported (only eql)`);
  if (rule.query === undefined || rule.query.trim() === "") throw new ElasticRuleError(source, "missing rule.query");

  let compiled: CompiledQuery;
  try {
    compiled = compileEqlQuery(rule.query, { costlyField: isProcReadField });
  } catch (error) {
    if (error instanceof EqlError) {
      const start = queryStartLine(text, rule.query);
      throw new ElasticRuleError(
        source,
        `EQL: ${error.problem} (query ${error.line}:${error.column})`,
        start !== undefined ? start + error.line - 1 : undefined,
      );
    }
    throw error;
  }
  const categories = compiled.kind === "event" ? [compiled.category] : compiled.categories;
  const unsupported = categories.find((category) => !SUPPORTED_CATEGORIES.has(category));
  if (unsupported !== undefined) {
    throw new ElasticRuleError(source, `event category ${JSON.stringify(unsupported)} is not supported (only ${[...SUPPORTED_CATEGORIES].join(", ")})`);
  }

  const threat: ThreatEntry[] = (rule.threat ?? []).map((entry) => ({
    framework: entry.framework,
    tactic: { ...entry.tactic },
    ...(entry.technique !== undefined
      ? {
          technique: entry.technique.map((technique) => ({
            ...technique,
            ...(technique.subtechnique !== undefined ? { subtechnique: technique.subtechnique.map((sub) => ({ ...sub })) } : {}),
          })),
        }
      : {}),
  }));
  const extra: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(rule)) if (!META_KEYS.has(key)) extra[key] = value;
  if (metadata !== undefined) extra["metadata"] = metadata;

  const meta: RuleMeta = {
    id: rule.rule_id,
    name: rule.name,
    description: rule.description.trim(),
    ...(rule.version !== undefined ? { version: String(rule.version) } : {}),
    severity: rule.severity,
    ...(rule.risk_score !== undefined ? { riskScore: rule.risk_score } : {}),
    threat,
    ...(rule.tags !== undefined ? { tags: [...rule.tags] } : {}),
    source,
    extra,
  };
  return { meta, query: rule.query, compiled };
}

/** Loads one rule file. Strict (default): throws ElasticRuleError when it cannot run. */
export function loadElasticRuleFile(path: string, options: ElasticLoadOptions = {}): ElasticRuleLoadResult {
  try {
    let text: string;
    try {
      text = readRegularTextFile(path, MAX_RULE_FILE_BYTES);
    } catch (error) {
      throw error instanceof FileReadError ? new ElasticRuleError(path, error.problem) : error;
    }
    return { source: path, status: "runs", rule: parseRuleText(path, text) };
  } catch (error) {
    if (options.lenient && error instanceof ElasticRuleError) return { source: path, status: "skipped", reason: error.message };
    throw error;
  }
}

/**
 * Loads files; a directory stands for its *.toml files (sorted, not recursive). A directory
 * that cannot be listed is an ElasticRuleError, or a skipped result when lenient.
 */
export function loadElasticRules(paths: readonly string[], options: ElasticLoadOptions = {}): ElasticRuleLoadResult[] {
  const results: ElasticRuleLoadResult[] = [];
  for (const path of paths) {
    // An unreadable path is not a folder: loadElasticRuleFile reports it.
    if (!isDirectory(path)) {
      results.push(loadElasticRuleFile(path, options));
      continue;
    }
    let names: string[];
    try {
      names = listFolder(path);
    } catch (error) {
      const failure = new ElasticRuleError(path, `cannot list the folder: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      if (!options.lenient) throw failure;
      results.push({ source: path, status: "skipped", reason: failure.message });
      continue;
    }
    for (const name of names.filter((name) => name.endsWith(".toml")).sort()) results.push(loadElasticRuleFile(join(path, name), options));
  }
  return results;
}
