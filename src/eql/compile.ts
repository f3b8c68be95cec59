/**
 * Compiles parsed EQL (parse.ts) into predicates over nested ECS documents. Semantics
 * (docs/design.md §4, Elastic's EQL reference):
 *
 * - `:`, `in~`, `like~`, `regex~` and `~` functions are case-insensitive; `==`, `!=`, `in`,
 *   `like`, `regex` are case-sensitive.
 * - `:` and like are whole-value wildcard matches: `*` is any run of characters (including
 *   `/` and newlines), `?` exactly one character. Wildcards and regexes are compiled once,
 *   at compile time, to matchers that run in time linear in the value (match.ts); a bad or
 *   oversized regex is an `EqlError` then, not at match time.
 * - A field holding an array matches when ANY one element matches; elements are never
 *   joined. `!=` and `not in` hold when NO element equals.
 * - Missing field (absent, undefined, or an empty array): `==`, `:`, like, regex, `in`,
 *   `<`… are false; `!=` and `not in` are true, as in Elasticsearch, which turns them into
 *   `must_not` queries that match documents without the field. null: `field == null` holds
 *   for a missing or null field, `field != null` for a present, non-null one.
 * - A condition Elasticsearch cannot turn into a field query runs there as a script (a
 *   function such as `length(f) != 3`, a field compared with a field), where a missing value
 *   is null and null matches nothing: such a condition is false on a missing value under
 *   `!=`, `not in` and any number of `not`s directly over it. startsWith, endsWith,
 *   stringContains and cidrMatch of a field and literals are field queries, like plain fields.
 * - Case-insensitive comparisons fold case one code point at a time (case-fold.ts).
 * - Values of different types never compare equal (no string/number coercion); `<`, `<=`,
 *   `>`, `>=` compare numbers with numbers and strings with strings, else false. `:` and
 *   like/regex match numbers and booleans by their string form, never null.
 * - Functions (names case-insensitive): cidrMatch, length, startsWith, endsWith,
 *   stringContains, number, concat (functions.ts). A function of a missing value is missing.
 *
 * What a query requires of a document, asked without a document, is in analysis.ts.
 */
import { foldCase } from "./case-fold.js";
import { EqlError, parseEql, type EqlEventQuery, type EqlExpr, type EqlSequenceQuery, type Literal, type ValueExpr } from "./parser.js";
import { compileFunction, type Values } from "./functions.js";
import { compileRegex, RegexSyntaxError } from "./regex.js";
import { compileWildcard, type StringMatcher } from "./wildcard.js";

export { EqlError } from "./parser.js";

import type { EqlDocument } from "./document.js";
export type { EqlDocument };

export interface CompiledEql {
  kind: "event";
  /** The event category before `where` (e.g. "process"), lower-cased. */
  category: string;
  /** Every field path the query reads, in first-use order, without duplicates. */
  fields: string[];
  /** The parsed condition, for static questions (analysis.ts). */
  where: EqlExpr;
  test(doc: EqlDocument): boolean;
}

export interface CompiledSequenceStep {
  query: CompiledEql;
  /** The join key of a document for this step (sequence keys, then the step's), or undefined when a key is missing. */
  key(doc: EqlDocument): string | undefined;
  /** The fields the join key reads that must be present (keys not marked `?`): a document missing one never joins. */
  requiredKeyFields: string[];
}

export interface CompiledSequence {
  kind: "sequence";
  /** Every field path the query reads (steps, keys, until), without duplicates. */
  fields: string[];
  /** Every category a step or the until step reads. */
  categories: string[];
  maxspanMs: number | undefined;
  steps: CompiledSequenceStep[];
  until: CompiledSequenceStep | undefined;
}

export type CompiledQuery = CompiledEql | CompiledSequence;

export interface CompileOptions {
  /**
   * Fields whose value is costly to read (a /proc read): the conditions of an `and` or `or`
   * that read one run after the others, which often decide first. Order changes no answer.
   */
  costlyField?: (path: string) => boolean;
}

/** What compiling one query collects and needs. */
interface Scope {
  /** Every field path the query reads. */
  fields: Set<string>;
  costly: (path: string) => boolean;
}

type Predicate = (doc: EqlDocument) => boolean;
/** A script condition's answer: null where Elasticsearch's script sees a null. */
type ScriptPredicate = (doc: EqlDocument) => boolean | null;
type ValueFn = (doc: EqlDocument) => Values;

const own = (object: object, key: string): boolean => Object.prototype.hasOwnProperty.call(object, key);

/**
 * A document value worked out on its first read, not when the document is built (a /proc
 * read most queries never need); getField reads through it. Cheaper than a getter defined
 * per document: Object.defineProperty was most of an exec document's cost.
 */
export class Deferred {
  private done = false;
  private value: unknown;
  constructor(private readonly read: () => unknown) {}
  get(): unknown {
    if (!this.done) {
      this.value = this.read();
      this.done = true;
    }
    return this.value;
  }
}

const resolve = (value: unknown): unknown => (value instanceof Deferred ? value.get() : value);

/**
 * Looks a dotted path up in a nested object; a flat key holding the whole path also counts,
 * and a Deferred value counts as what it reads. Only own properties count: `process.__proto__`
 * or `constructor` are missing, not Object's.
 */
export function getField(doc: EqlDocument, path: string): unknown {
  return fieldGetter(path)(doc);
}

/**
 * getField for one path, split once: a query's fields are looked up for every document (with
 * Elastic's Linux rules loaded, every exec runs a few hundred lookups), and a split per lookup
 * was most of the rules' time.
 */
export function fieldGetter(path: string): (doc: EqlDocument) => unknown {
  const parts = path.split(".");
  return (doc) => {
    if (own(doc, path)) return resolve(doc[path]);
    let current: unknown = doc;
    for (let i = 0; i < parts.length; i++) {
      if (current === null || typeof current !== "object" || Array.isArray(current)) return undefined;
      const part = parts[i]!;
      if (!own(current, part)) return undefined;
      current = resolve((current as Record<string, unknown>)[part]);
    }
    return current;
  };
}

/** The values a field holds: undefined when missing, the elements when it is an array. */
function valuesOf(value: unknown): Values {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) return value.length === 0 ? undefined : value;
  return [value];
}

function compileValue(expr: ValueExpr, scope: Scope): ValueFn {
  switch (expr.type) {
    case "field": {
      const { path } = expr;
      scope.fields.add(path);
      const get = fieldGetter(path);
      return (doc) => valuesOf(get(doc));
    }
    case "literal": {
      const constant = [expr.value];
      return () => constant;
    }
    case "call": {
      const args = expr.args.map((arg) => compileValue(arg, scope));
      const literals = expr.args.map((arg) => (arg.type === "literal" ? arg.value : undefined));
      const fn = compileFunction(expr.name, args, literals, expr.caseInsensitive);
      if (typeof fn === "string") throw new EqlError(fn, expr.line, expr.column);
      return fn;
    }
  }
}

function asMatchable(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return String(value);
  return undefined;
}

function equals(actual: unknown, expected: unknown, caseInsensitive: boolean): boolean {
  if (expected === null) return actual === null;
  if (caseInsensitive && typeof actual === "string" && typeof expected === "string") {
    return foldCase(actual) === foldCase(expected);
  }
  return actual === expected;
}

function ordered(actual: unknown, op: "<" | "<=" | ">" | ">=", expected: unknown): boolean {
  const comparable =
    (typeof actual === "number" && typeof expected === "number") ||
    (typeof actual === "string" && typeof expected === "string");
  if (!comparable) return false;
  switch (op) {
    case "<":
      return actual < expected;
    case "<=":
      return actual <= expected;
    case ">":
      return actual > expected;
    case ">=":
      return actual >= expected;
  }
}

/** Functions Elasticsearch answers with a field query when given a field and literals. */
const FIELD_QUERY_FUNCTIONS: ReadonlySet<string> = new Set(["startswith", "endswith", "stringcontains", "cidrmatch"]);

/** Whether Elasticsearch runs this condition as a script, where a missing value is null. */
function isScript(expr: EqlExpr): boolean {
  switch (expr.type) {
    case "compare": {
      const sides = [expr.left.type, expr.right.type].sort().join();
      return sides !== "field,literal" && sides !== "literal,literal";
    }
    case "in":
    case "wildcard":
    case "regex":
      return expr.left.type === "call";
    case "truthy": {
      const { value } = expr;
      if (value.type !== "call") return true;
      const [first, ...rest] = value.args;
      return !(FIELD_QUERY_FUNCTIONS.has(value.name) && first?.type === "field" && rest.every((arg) => arg.type === "literal"));
    }
    case "not":
      return isScript(expr.expr);
    default:
      return false;
  }
}

/**
 * `field OP literal` (a literal other than null), the commonest comparison (`user.id != "0"`,
 * `process.args_count >= 3`): the same answers as the general case (any element; null when the
 * field is missing) without the arrays and closures it makes per call, as Elastic's rules run
 * it on every exec.
 */
function compareFieldWithLiteral(path: string, op: "==" | "!=" | "<" | "<=" | ">" | ">=", expected: Literal): ScriptPredicate {
  const get = fieldGetter(path);
  const test = op === "==" || op === "!=" ? (value: unknown) => value === expected : (value: unknown) => ordered(value, op, expected);
  const any = (doc: EqlDocument): boolean | null => {
    const raw = get(doc);
    if (raw === undefined) return null;
    if (!Array.isArray(raw)) return test(raw);
    if (raw.length === 0) return null;
    for (let k = 0; k < raw.length; k++) if (test(raw[k])) return true;
    return false;
  };
  if (op !== "!=") return any;
  return (doc) => {
    const equal = any(doc);
    return equal === null ? null : !equal;
  };
}

/** A condition (or `not`s over one) as three-valued: null when it reads a missing value. */
function compileCondition(expr: EqlExpr, scope: Scope): ScriptPredicate {
  switch (expr.type) {
    case "not": {
      const inner = compileCondition(expr.expr, scope);
      return (doc) => {
        const t = inner(doc);
        return t === null ? null : !t;
      };
    }
    case "truthy": {
      const value = compileValue(expr.value, scope);
      return (doc) => value(doc)?.some((v) => v === true) ?? null;
    }
    case "compare": {
      const { op } = expr;
      const left = compileValue(expr.left, scope);
      if (expr.right.type === "literal" && expr.right.value === null) {
        if (op === "==") return (doc) => (left(doc) ?? [null]).some((v) => v === null);
        if (op === "!=") return (doc) => (left(doc) ?? [null]).some((v) => v !== null);
        return () => false;
      }
      if (expr.left.type === "field" && expr.right.type === "literal") return compareFieldWithLiteral(expr.left.path, op, expr.right.value);
      const right = compileValue(expr.right, scope);
      const anyPair = (doc: EqlDocument, test: (l: unknown, r: unknown) => boolean): boolean | null => {
        const ls = left(doc);
        if (ls === undefined) return null;
        const rs = right(doc);
        if (rs === undefined) return null;
        return ls.some((l) => rs.some((r) => test(l, r)));
      };
      if (op === "==") return (doc) => anyPair(doc, (l, r) => equals(l, r, false));
      if (op === "!=") {
        return (doc) => {
          const equal = anyPair(doc, (l, r) => equals(l, r, false));
          return equal === null ? null : !equal;
        };
      }
      return (doc) => anyPair(doc, (l, r) => ordered(l, op, r));
    }
    case "in": {
      const { values: expected, caseInsensitive, negated } = expr;
      const left = compileValue(expr.left, scope);
      // Sets instead of a scan with a fold per listed value: Elastic's rules list dozens of
      // names, and every exec is tested against them. Same answers as equals(): strings
      // compare (case-folded when asked), anything else by ===, null only with null.
      const strings = new Set<string>();
      const others = new Set<unknown>();
      for (const e of expected) {
        if (typeof e === "string") strings.add(caseInsensitive ? foldCase(e) : e);
        else others.add(e);
      }
      const hit = (v: unknown) => (typeof v === "string" ? strings.has(caseInsensitive ? foldCase(v) : v) : others.has(v));
      return (doc) => {
        const any = left(doc)?.some(hit);
        if (any === undefined) return null;
        return negated ? !any : any;
      };
    }
    case "wildcard": {
      const { patterns, caseInsensitive } = expr;
      const left = compileValue(expr.left, scope);
      // The value is case-folded once, not once per pattern; patterns without `*` or `?` are
      // whole-value equality, answered by one Set lookup.
      const fold = (text: string) => (caseInsensitive ? foldCase(text) : text);
      const exact = new Set<string>();
      const matchers: StringMatcher[] = [];
      for (const pattern of patterns) {
        if (!pattern.includes("*") && !pattern.includes("?")) exact.add(fold(pattern));
        else matchers.push(compileWildcard(fold(pattern), false));
      }
      const matches = (v: unknown) => {
        const text = asMatchable(v);
        if (text === undefined) return false;
        const folded = fold(text);
        return exact.has(folded) || matchers.some((match) => match(folded));
      };
      // A frozen array cannot change, so its answer is kept: documents share such arrays
      // (the capability names of a set, ecs-capabilities.ts), and `: "CAP_SET?ID"` over root's
      // 41 names on every exec was the costliest test of Elastic's Linux rules.
      const known = new WeakMap<readonly unknown[], boolean>();
      return (doc) => {
        const values = left(doc);
        if (values === undefined) return null;
        if (!Object.isFrozen(values)) return values.some(matches);
        let answer = known.get(values);
        if (answer === undefined) known.set(values, (answer = values.some(matches)));
        return answer;
      };
    }
    case "regex": {
      const { patterns, caseInsensitive } = expr;
      const left = compileValue(expr.left, scope);
      const matchers: StringMatcher[] = patterns.map((pattern) => {
        try {
          return compileRegex(pattern, caseInsensitive);
        } catch (error) {
          if (!(error instanceof RegexSyntaxError)) throw error;
          throw new EqlError(`invalid regex ${JSON.stringify(pattern)}: ${error.message}`, expr.line, expr.column);
        }
      });
      return (doc) =>
        left(doc)?.some((v) => {
          const text = asMatchable(v);
          return text !== undefined && matchers.some((match) => match(text));
        }) ?? null;
    }
    default: {
      const test = compileExpr(expr, scope);
      return (doc) => test(doc);
    }
  }
}

/**
 * The two-valued predicate: a field query's missing value (null) is false before `not`
 * negates it (must_not matches documents without the field), a script's stays null through
 * the `not`s over it and is false only then.
 */
function compileExpr(expr: EqlExpr, scope: Scope): Predicate {
  switch (expr.type) {
    case "and": {
      const items = cheapFirst(expr.items, scope).map((item) => compileExpr(item, scope));
      return (doc) => items.every((item) => item(doc));
    }
    case "or": {
      const items = cheapFirst(expr.items, scope).map((item) => compileExpr(item, scope));
      return (doc) => items.some((item) => item(doc));
    }
    case "const": {
      const { value } = expr;
      return () => value;
    }
    case "not": {
      if (isScript(expr)) {
        const script = compileCondition(expr, scope);
        return (doc) => script(doc) === true;
      }
      const inner = compileExpr(expr.expr, scope);
      return (doc) => !inner(doc);
    }
    default: {
      const condition = compileCondition(expr, scope);
      // A field query's `!=` and `not in` are must_not queries: true without the field.
      const negatedFieldQuery = !isScript(expr) && ((expr.type === "compare" && expr.op === "!=") || (expr.type === "in" && expr.negated));
      if (negatedFieldQuery) return (doc) => condition(doc) !== false;
      return (doc) => condition(doc) === true;
    }
  }
}

/** Every field `value` reads. */
function valueFields(value: ValueExpr, out: string[] = []): string[] {
  if (value.type === "field") out.push(value.path);
  if (value.type === "call") for (const arg of value.args) valueFields(arg, out);
  return out;
}

/** Every field `expr` reads. */
export function exprFields(expr: EqlExpr, out: string[] = []): string[] {
  switch (expr.type) {
    case "and":
    case "or":
      for (const item of expr.items) exprFields(item, out);
      return out;
    case "not":
      return exprFields(expr.expr, out);
    case "const":
      return out;
    case "truthy":
      return valueFields(expr.value, out);
    case "compare":
      valueFields(expr.left, out);
      return valueFields(expr.right, out);
    default:
      return valueFields(expr.left, out);
  }
}

/** `items` with those reading a costly field moved to the end, in order otherwise. */
function cheapFirst(items: readonly EqlExpr[], scope: Scope): EqlExpr[] {
  const costly = items.map((item) => exprFields(item).some(scope.costly));
  return [...items.filter((_, k) => !costly[k]), ...items.filter((_, k) => costly[k])];
}

/** Compiles one condition of a query on its own, for analysis.ts. */
export function compileStandalone(expr: EqlExpr): Predicate {
  return compileExpr(expr, { fields: new Set(), costly: () => false });
}

function compileEventQuery(parsed: EqlEventQuery, options: CompileOptions): CompiledEql {
  const scope: Scope = { fields: new Set(), costly: options.costlyField ?? (() => false) };
  const test = compileExpr(parsed.where, scope);
  return { kind: "event", category: parsed.category, fields: [...scope.fields], where: parsed.where, test };
}

/** A join key; an optional one (`?field`) joins a missing value as null, as Elasticsearch does. */
interface JoinKey {
  value: ValueFn;
  optional: boolean;
}

function compileSequence(parsed: EqlSequenceQuery, options: CompileOptions): CompiledSequence {
  const fields = new Set<string>();
  const scope: Scope = { fields, costly: () => false };
  const compileKey = (key: ValueExpr): JoinKey => ({ value: compileValue(key, scope), optional: key.type === "field" && key.optional });
  const sharedKeys = parsed.by.map(compileKey);
  // A step repeated by `runs` appears several times: compile it once.
  const compiled = new Map<EqlSequenceQuery["steps"][number], CompiledSequenceStep>();
  const compileStep = (step: EqlSequenceQuery["steps"][number]): CompiledSequenceStep => {
    const done = compiled.get(step);
    if (done !== undefined) return done;
    const query = compileEventQuery(step.query, options);
    for (const field of query.fields) fields.add(field);
    const keys = [...sharedKeys, ...step.by.map(compileKey)];
    const requiredKeyFields = [...parsed.by, ...step.by].filter((key) => !(key.type === "field" && key.optional)).flatMap((key) => valueFields(key, []));
    const result: CompiledSequenceStep = {
      query,
      requiredKeyFields,
      key(doc) {
        const parts: unknown[] = [];
        for (const key of keys) {
          const value = key.value(doc)?.[0] ?? null;
          if (value === null && !key.optional) return undefined;
          parts.push(value);
        }
        return JSON.stringify(parts);
      },
    };
    compiled.set(step, result);
    return result;
  };
  const steps = parsed.steps.map(compileStep);
  const until = parsed.until !== undefined ? compileStep(parsed.until) : undefined;
  const categories = new Set([...steps, ...(until ? [until] : [])].map((step) => step.query.category));
  return { kind: "sequence", fields: [...fields], categories: [...categories], maxspanMs: parsed.maxspanMs, steps, until };
}

/**
 * Parses and compiles a single-event query or a sequence. Throws `EqlError` (one-line
 * message with line:column) for syntax errors and for constructs outside the subset.
 */
export function compileEqlQuery(query: string, options: CompileOptions = {}): CompiledQuery {
  const parsed = parseEql(query);
  return parsed.kind === "event" ? compileEventQuery(parsed, options) : compileSequence(parsed, options);
}

/** Parses and compiles a single-event query; a sequence is an `EqlError` here. */
export function compileEql(query: string, options: CompileOptions = {}): CompiledEql {
  const parsed = parseEql(query);
  if (parsed.kind !== "event") throw new EqlError("a sequence is not a single-event query (use compileEqlQuery)", 1, 1);
  return compileEventQuery(parsed, options);
}

export type { Literal };
