/**
 * Compiles parsed EQL (parse.ts) into predicates over nested ECS documents. Semantics
 * (design.md §4, Elastic's EQL reference):
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
 * - Values of different types never compare equal (no string/number coercion); `<`, `<=`,
 *   `>`, `>=` compare numbers with numbers and strings with strings, else false. `:` and
 *   like/regex match numbers and booleans by their string form, never null.
 * - Functions (names case-insensitive): cidrMatch, length, startsWith, endsWith,
 *   stringContains, number, concat (functions.ts). A function of a missing value is missing.
 */
import { EqlError, parseEql, type EqlEventQuery, type EqlExpr, type EqlSequenceQuery, type Literal, type ValueExpr } from "./parse.js";
import { compileFunction, type Values } from "./functions.js";
import { compileRegex, compileWildcard, RegexSyntaxError, type StringMatcher } from "./match.js";

export { EqlError } from "./parse.js";

export type EqlDocument = Record<string, unknown>;

export interface CompiledEql {
  kind: "event";
  /** The event category before `where` (e.g. "process"), lower-cased. */
  category: string;
  /** Every field path the query reads, in first-use order, without duplicates. */
  fields: string[];
  /** The parsed condition, for static questions (canHold). */
  where: EqlExpr;
  test(doc: EqlDocument): boolean;
  /**
   * The values `field` must take for the query to hold at all (from a top-level
   * `field in (...)`, `field == "x"`, `field in~ (...)` or `field : "x"` without wildcards,
   * joined through `and` / `or`), or undefined when the query does not pin it down. A caller
   * that knows the field cheaply can skip building the document when its value is not in it.
   */
  requiredValues(field: string): RequiredValues | undefined;
}

export interface CompiledSequenceStep {
  query: CompiledEql;
  /** The join key of a document for this step (sequence keys, then the step's), or undefined when a key is missing. */
  key(doc: EqlDocument): string | undefined;
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

/** A value set from requiredValues(); `caseInsensitive` sets hold lower-cased values. */
export interface RequiredValues {
  values: ReadonlySet<string>;
  caseInsensitive: boolean;
  has(value: string): boolean;
}

type Predicate = (doc: EqlDocument) => boolean;
type ValueFn = (doc: EqlDocument) => Values;

const own = (object: object, key: string): boolean => Object.prototype.hasOwnProperty.call(object, key);

/**
 * Looks a dotted path up in a nested object; a flat key holding the whole path also counts.
 * Only own properties count: `process.__proto__` or `constructor` are missing, not Object's.
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
    if (own(doc, path)) return doc[path];
    let current: unknown = doc;
    for (let i = 0; i < parts.length; i++) {
      if (current === null || typeof current !== "object" || Array.isArray(current)) return undefined;
      const part = parts[i]!;
      if (!own(current, part)) return undefined;
      current = (current as Record<string, unknown>)[part];
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

function compileValue(expr: ValueExpr, fields: Set<string>): ValueFn {
  switch (expr.type) {
    case "field": {
      const { path } = expr;
      fields.add(path);
      const get = fieldGetter(path);
      return (doc) => valuesOf(get(doc));
    }
    case "literal": {
      const constant = [expr.value];
      return () => constant;
    }
    case "call": {
      const args = expr.args.map((arg) => compileValue(arg, fields));
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
    return actual.toLowerCase() === expected.toLowerCase();
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

function compileExpr(expr: EqlExpr, fields: Set<string>): Predicate {
  switch (expr.type) {
    case "and": {
      const items = expr.items.map((item) => compileExpr(item, fields));
      return (doc) => items.every((item) => item(doc));
    }
    case "or": {
      const items = expr.items.map((item) => compileExpr(item, fields));
      return (doc) => items.some((item) => item(doc));
    }
    case "not": {
      const inner = compileExpr(expr.expr, fields);
      return (doc) => !inner(doc);
    }
    case "const": {
      const { value } = expr;
      return () => value;
    }
    case "truthy": {
      const value = compileValue(expr.value, fields);
      return (doc) => value(doc)?.some((v) => v === true) ?? false;
    }
    case "compare": {
      const { op } = expr;
      const left = compileValue(expr.left, fields);
      if (expr.right.type === "literal" && expr.right.value === null) {
        if (op === "==") return (doc) => (left(doc) ?? [null]).some((v) => v === null);
        if (op === "!=") return (doc) => (left(doc) ?? [null]).some((v) => v !== null);
        return () => false;
      }
      const right = compileValue(expr.right, fields);
      const anyPair = (doc: EqlDocument, test: (l: unknown, r: unknown) => boolean): boolean | undefined => {
        const ls = left(doc);
        if (ls === undefined) return undefined;
        const rs = right(doc);
        if (rs === undefined) return undefined;
        return ls.some((l) => rs.some((r) => test(l, r)));
      };
      if (op === "==") return (doc) => anyPair(doc, (l, r) => equals(l, r, false)) ?? false;
      if (op === "!=") return (doc) => !(anyPair(doc, (l, r) => equals(l, r, false)) ?? false);
      return (doc) => anyPair(doc, (l, r) => ordered(l, op, r)) ?? false;
    }
    case "in": {
      const { values: expected, caseInsensitive, negated } = expr;
      const left = compileValue(expr.left, fields);
      // Sets instead of a scan with a toLowerCase per listed value: Elastic's rules list dozens
      // of names, and every exec is tested against them. Same answers as equals(): strings
      // compare (case-folded when asked), anything else by ===, null only with null.
      const strings = new Set<string>();
      const others = new Set<unknown>();
      for (const e of expected) {
        if (typeof e === "string") strings.add(caseInsensitive ? e.toLowerCase() : e);
        else others.add(e);
      }
      const hit = (v: unknown) => (typeof v === "string" ? strings.has(caseInsensitive ? v.toLowerCase() : v) : others.has(v));
      return (doc) => {
        const any = left(doc)?.some(hit) ?? false;
        return negated ? !any : any;
      };
    }
    case "wildcard": {
      const { patterns, caseInsensitive } = expr;
      const left = compileValue(expr.left, fields);
      // The value is case-folded once, not once per pattern; patterns without `*` or `?` are
      // whole-value equality, answered by one Set lookup.
      const fold = (text: string) => (caseInsensitive ? text.toLowerCase() : text);
      const exact = new Set<string>();
      const matchers: StringMatcher[] = [];
      for (const pattern of patterns) {
        if (!pattern.includes("*") && !pattern.includes("?")) exact.add(fold(pattern));
        else matchers.push(compileWildcard(fold(pattern), false));
      }
      return (doc) =>
        left(doc)?.some((v) => {
          const text = asMatchable(v);
          if (text === undefined) return false;
          const folded = fold(text);
          return exact.has(folded) || matchers.some((match) => match(folded));
        }) ?? false;
    }
    case "regex": {
      const { patterns, caseInsensitive } = expr;
      const left = compileValue(expr.left, fields);
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
        }) ?? false;
    }
  }
}

function valueSet(values: readonly string[], caseInsensitive: boolean): RequiredValues {
  const set = new Set(caseInsensitive ? values.map((v) => v.toLowerCase()) : values);
  return { values: set, caseInsensitive, has: (value) => set.has(caseInsensitive ? value.toLowerCase() : value) };
}

function isField(value: ValueExpr, field: string): boolean {
  return value.type === "field" && value.path === field;
}

/**
 * What `expr` requires of a string field. `and`: any item's requirement holds for the
 * whole (the smallest is kept); `or`: only when every item pins the field, their union (case
 * folded if any item folds case). Anything else (not, !=, wildcards, numbers) pins nothing.
 */
function requiredOf(expr: EqlExpr, field: string): RequiredValues | undefined {
  switch (expr.type) {
    case "and": {
      let best: RequiredValues | undefined;
      for (const item of expr.items) {
        const r = requiredOf(item, field);
        if (r !== undefined && (best === undefined || r.values.size < best.values.size)) best = r;
      }
      return best;
    }
    case "or": {
      const parts: RequiredValues[] = [];
      for (const item of expr.items) {
        const r = requiredOf(item, field);
        if (r === undefined) return undefined;
        parts.push(r);
      }
      const caseInsensitive = parts.some((p) => p.caseInsensitive);
      return valueSet(parts.flatMap((p) => [...p.values]), caseInsensitive);
    }
    case "compare":
      return isField(expr.left, field) && expr.op === "==" && expr.right.type === "literal" && typeof expr.right.value === "string"
        ? valueSet([expr.right.value], false)
        : undefined;
    case "in":
      if (!isField(expr.left, field) || expr.negated || !expr.values.every((v) => typeof v === "string")) return undefined;
      return valueSet(expr.values, expr.caseInsensitive);
    case "wildcard":
      if (!isField(expr.left, field) || expr.patterns.some((p) => p.includes("*") || p.includes("?"))) return undefined;
      return valueSet(expr.patterns, expr.caseInsensitive);
    default:
      return undefined;
  }
}

function compileEventQuery(parsed: EqlEventQuery): CompiledEql {
  const fields = new Set<string>();
  const test = compileExpr(parsed.where, fields);
  const required = new Map<string, RequiredValues | undefined>();
  return {
    kind: "event",
    category: parsed.category,
    fields: [...fields],
    where: parsed.where,
    test,
    requiredValues(field) {
      if (!required.has(field)) required.set(field, requiredOf(parsed.where, field));
      return required.get(field);
    },
  };
}

function compileSequence(parsed: EqlSequenceQuery): CompiledSequence {
  const fields = new Set<string>();
  const sharedKeys = parsed.by.map((key) => compileValue(key, fields));
  // A step repeated by `runs` appears several times: compile it once.
  const compiled = new Map<EqlSequenceQuery["steps"][number], CompiledSequenceStep>();
  const compileStep = (step: EqlSequenceQuery["steps"][number]): CompiledSequenceStep => {
    const done = compiled.get(step);
    if (done !== undefined) return done;
    const query = compileEventQuery(step.query);
    for (const field of query.fields) fields.add(field);
    const keys = [...sharedKeys, ...step.by.map((key) => compileValue(key, fields))];
    const result: CompiledSequenceStep = {
      query,
      key(doc) {
        const parts: unknown[] = [];
        for (const key of keys) {
          const value = key(doc)?.[0];
          if (value === undefined || value === null) return undefined;
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
export function compileEqlQuery(query: string): CompiledQuery {
  const parsed = parseEql(query);
  return parsed.kind === "event" ? compileEventQuery(parsed) : compileSequence(parsed);
}

/** Parses and compiles a single-event query; a sequence is an `EqlError` here. */
export function compileEql(query: string): CompiledEql {
  const parsed = parseEql(query);
  if (parsed.kind !== "event") throw new EqlError("a sequence is not a single-event query (use compileEqlQuery)", 1, 1);
  return compileEventQuery(parsed);
}

/** Every field `value` reads. */
function valueFields(value: ValueExpr, out: string[]): string[] {
  if (value.type === "field") out.push(value.path);
  if (value.type === "call") for (const arg of value.args) valueFields(arg, out);
  return out;
}

/** true / false when decided, undefined when it depends on the document. */
type Truth = boolean | undefined;

/**
 * Whether `where` can hold at all on the documents of one kind, where `variable(field)` says
 * which fields take values from event to event and `fixed` holds the rest (the constants of
 * that kind, e.g. event.category; a field in neither is always missing). Each condition on
 * fixed or missing fields alone is decided on `fixed`; the others could go either way.
 * false means the query can never match (a condition it needs reads a field never filled,
 * or an event.action never emitted).
 */
export function canHold(where: EqlExpr, variable: (field: string) => boolean, fixed: EqlDocument): boolean {
  const truth = (expr: EqlExpr): Truth => {
    switch (expr.type) {
      case "and": {
        let result: Truth = true;
        for (const item of expr.items) {
          const t = truth(item);
          if (t === false) return false;
          if (t === undefined) result = undefined;
        }
        return result;
      }
      case "or": {
        let result: Truth = false;
        for (const item of expr.items) {
          const t = truth(item);
          if (t === true) return true;
          if (t === undefined) result = undefined;
        }
        return result;
      }
      case "not": {
        const t = truth(expr.expr);
        return t === undefined ? undefined : !t;
      }
      case "const":
        return expr.value;
      default: {
        const read: string[] = [];
        if (expr.type === "truthy") valueFields(expr.value, read);
        else valueFields(expr.left, read);
        if (expr.type === "compare") valueFields(expr.right, read);
        if (read.some(variable)) return undefined;
        return compileExpr(expr, new Set())(fixed);
      }
    }
  };
  return truth(where) !== false;
}

export type { Literal };
