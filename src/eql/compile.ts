/**
 * Compiles a parsed single-event EQL query (parse.ts) into a predicate over a nested ECS
 * document. Semantics (design.md §4):
 *
 * - `:`, `in~`, `like~`, `regex~` are case-insensitive; `==`, `!=`, `in`, `like`, `regex`
 *   are case-sensitive.
 * - `:` and like are whole-value wildcard matches: `*` is any run of characters (including
 *   `/` and newlines), `?` exactly one character. Wildcards and regexes are compiled to a
 *   RegExp once, at compile time; a bad regex is an `EqlError` then, not at match time.
 * - A field holding an array matches when ANY one element matches; elements are never
 *   joined. `!=` and `not in` are the negation of `==` / `in` on a present field, so on an
 *   array they hold when NO element equals.
 * - Missing field (absent, undefined, or an empty array): every comparison is false,
 *   including `!=` and `not in` (only an explicit `not (...)` turns it true). The one
 *   exception is null: `field == null` holds for a missing or null field, `field != null`
 *   for a present, non-null one.
 * - Values of different types never compare equal (no string/number coercion); `<`, `<=`,
 *   `>`, `>=` compare numbers with numbers and strings with strings, else false. `:` and
 *   like/regex match numbers and booleans by their string form, never null.
 */
import { EqlError, parseEql, type EqlExpr, type Literal } from "./parse.js";

export { EqlError } from "./parse.js";

export type EqlDocument = Record<string, unknown>;

export interface CompiledEql {
  /** The event category before `where` (e.g. "process"), lower-cased. */
  category: string;
  /** Every field path the query reads, in first-use order, without duplicates. */
  fields: string[];
  test(doc: EqlDocument): boolean;
  /**
   * The values `field` must take for the query to hold at all (from a top-level
   * `field in (...)`, `field == "x"`, `field in~ (...)` or `field : "x"` without wildcards,
   * joined through `and` / `or`), or undefined when the query does not pin it down. A caller
   * that knows the field cheaply can skip building the document when its value is not in it.
   */
  requiredValues(field: string): RequiredValues | undefined;
}

/** A value set from requiredValues(); `caseInsensitive` sets hold lower-cased values. */
export interface RequiredValues {
  values: ReadonlySet<string>;
  caseInsensitive: boolean;
  has(value: string): boolean;
}

type Predicate = (doc: EqlDocument) => boolean;

/** Looks a dotted path up in a nested object; a flat key holding the whole path also counts. */
export function getField(doc: EqlDocument, path: string): unknown {
  if (Object.prototype.hasOwnProperty.call(doc, path)) return doc[path];
  let current: unknown = doc;
  for (const part of path.split(".")) {
    if (current === null || typeof current !== "object" || Array.isArray(current)) return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

/** The values a field holds: [] when missing, the elements when it is an array. */
function valuesOf(doc: EqlDocument, path: string): unknown[] | undefined {
  const value = getField(doc, path);
  if (value === undefined) return undefined;
  if (Array.isArray(value)) return value.length === 0 ? undefined : value;
  return [value];
}

/** `*` any run (also across `/`), `?` one character, the rest literal; whole-value match. */
export function wildcardToRegExp(pattern: string, caseInsensitive: boolean): RegExp {
  let source = "";
  for (const ch of pattern) {
    if (ch === "*") source += ".*";
    else if (ch === "?") source += ".";
    else source += ch.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  }
  return new RegExp(`^(?:${source})$`, caseInsensitive ? "isu" : "su");
}

function asMatchable(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return String(value);
  return undefined;
}

function equals(actual: unknown, expected: Literal, caseInsensitive: boolean): boolean {
  if (expected === null) return actual === null;
  if (caseInsensitive && typeof actual === "string" && typeof expected === "string") {
    return actual.toLowerCase() === expected.toLowerCase();
  }
  return actual === expected;
}

function ordered(actual: unknown, op: "<" | "<=" | ">" | ">=", expected: Literal): boolean {
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
      const left = compileExpr(expr.left, fields);
      const right = compileExpr(expr.right, fields);
      return (doc) => left(doc) && right(doc);
    }
    case "or": {
      const left = compileExpr(expr.left, fields);
      const right = compileExpr(expr.right, fields);
      return (doc) => left(doc) || right(doc);
    }
    case "not": {
      const inner = compileExpr(expr.expr, fields);
      return (doc) => !inner(doc);
    }
    case "compare": {
      const { field, op, value } = expr;
      fields.add(field);
      if (value === null) {
        if (op === "==") return (doc) => (valuesOf(doc, field) ?? [null]).some((v) => v === null);
        if (op === "!=") return (doc) => (valuesOf(doc, field) ?? [null]).some((v) => v !== null);
        return () => false;
      }
      if (op === "==") return (doc) => valuesOf(doc, field)?.some((v) => equals(v, value, false)) ?? false;
      if (op === "!=") {
        return (doc) => {
          const values = valuesOf(doc, field);
          return values !== undefined && !values.some((v) => equals(v, value, false));
        };
      }
      return (doc) => valuesOf(doc, field)?.some((v) => ordered(v, op, value)) ?? false;
    }
    case "in": {
      const { field, values: expected, caseInsensitive, negated } = expr;
      fields.add(field);
      const hit = (v: unknown) => expected.some((e) => equals(v, e, caseInsensitive));
      return (doc) => {
        const values = valuesOf(doc, field);
        if (values === undefined) return false;
        const any = values.some(hit);
        return negated ? !any : any;
      };
    }
    case "wildcard":
    case "regex": {
      const { field, patterns, caseInsensitive } = expr;
      fields.add(field);
      const regexes = patterns.map((pattern) => {
        if (expr.type !== "regex") return wildcardToRegExp(pattern, caseInsensitive);
        try {
          return new RegExp(`^(?:${pattern})$`, caseInsensitive ? "isu" : "su");
        } catch (error) {
          throw new EqlError(`invalid regex ${JSON.stringify(pattern)}: ${(error as Error).message}`, expr.line, expr.column);
        }
      });
      return (doc) =>
        valuesOf(doc, field)?.some((v) => {
          const text = asMatchable(v);
          return text !== undefined && regexes.some((re) => re.test(text));
        }) ?? false;
    }
  }
}

function valueSet(values: readonly string[], caseInsensitive: boolean): RequiredValues {
  const set = new Set(caseInsensitive ? values.map((v) => v.toLowerCase()) : values);
  return { values: set, caseInsensitive, has: (value) => set.has(caseInsensitive ? value.toLowerCase() : value) };
}

/**
 * What `expr` requires of a string field. `and`: either side's requirement holds for the
 * whole (the smaller is kept); `or`: only when both sides pin the field, their union (case
 * folded if either side folds case). Anything else (not, !=, wildcards, numbers) pins nothing.
 */
function requiredOf(expr: EqlExpr, field: string): RequiredValues | undefined {
  switch (expr.type) {
    case "and": {
      const left = requiredOf(expr.left, field);
      const right = requiredOf(expr.right, field);
      if (left === undefined || right === undefined) return left ?? right;
      return left.values.size <= right.values.size ? left : right;
    }
    case "or": {
      const left = requiredOf(expr.left, field);
      const right = requiredOf(expr.right, field);
      if (left === undefined || right === undefined) return undefined;
      const caseInsensitive = left.caseInsensitive || right.caseInsensitive;
      return valueSet([...left.values, ...right.values], caseInsensitive);
    }
    case "compare":
      return expr.field === field && expr.op === "==" && typeof expr.value === "string" ? valueSet([expr.value], false) : undefined;
    case "in":
      if (expr.field !== field || expr.negated || !expr.values.every((v) => typeof v === "string")) return undefined;
      return valueSet(expr.values, expr.caseInsensitive);
    case "wildcard":
      if (expr.field !== field || expr.patterns.some((p) => p.includes("*") || p.includes("?"))) return undefined;
      return valueSet(expr.patterns, expr.caseInsensitive);
    default:
      return undefined;
  }
}

/**
 * Parses and compiles a single-event EQL query. Throws `EqlError` (one-line message with
 * line:column) for syntax errors and for constructs outside the supported subset.
 */
export function compileEql(query: string): CompiledEql {
  const parsed = parseEql(query);
  const fields = new Set<string>();
  const test = compileExpr(parsed.where, fields);
  const required = new Map<string, RequiredValues | undefined>();
  return {
    category: parsed.category.toLowerCase(),
    fields: [...fields],
    test,
    requiredValues(field) {
      if (!required.has(field)) required.set(field, requiredOf(parsed.where, field));
      return required.get(field);
    },
  };
}
