/**
 * Static questions about a compiled query, asked without a document: what a document's
 * fields must hold for it to match (anchorsOf: how rules are indexed), and whether it can hold
 * at all on one kind of document (canHold).
 */
import { foldCase } from "./case-fold.js";
import { compileStandalone, exprFields, type EqlDocument } from "./compile.js";
import type { EqlExpr } from "./parser.js";
import { regexLiteralPrefix } from "./regex.js";

/** true / false when decided, undefined when it depends on the document. */
type Truth = boolean | undefined;

/**
 * Whether `where` can hold at all on the documents of one kind, where `variable(field)` says
 * which fields take values from event to event and `fixed` holds the rest (the constants of
 * that kind, e.g. event.category; a field in neither is always missing). Each condition on
 * fixed or missing fields alone is decided on `fixed`; the others could go either way.
 * false means the query can never match (a condition it needs reads a field never filled,
 * or an event.action never emitted). `domains` names fields that take only the values listed
 * (or are missing): a condition on one of them is decided by trying each.
 */
export function canHold(
  where: EqlExpr,
  variable: (field: string) => boolean,
  fixed: EqlDocument,
  domains: Readonly<Record<string, readonly unknown[]>> = {},
): boolean {
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
        const varying = exprFields(expr).filter(variable);
        if (varying.length === 0) return compileStandalone(expr)(fixed);
        // One field that takes only a few values (or is missing): decided by trying each.
        const values = varying.length === 1 ? domains[varying[0]!] : undefined;
        if (values === undefined) return undefined;
        const test = compileStandalone(expr);
        const results = [undefined, ...values].map((value) => test(withField(fixed, varying[0]!, value)));
        return results.every((r) => r === results[0]) ? results[0] : undefined;
      }
    }
  };
  return truth(where) !== false;
}

/** A copy of `doc` with the dotted `path` set to `value` (left out when undefined). */
function withField(doc: EqlDocument, path: string, value: unknown): EqlDocument {
  const copy = structuredClone(doc) as Record<string, unknown>;
  if (value === undefined) return copy;
  const parts = path.split(".");
  let at = copy;
  for (const part of parts.slice(0, -1)) {
    const next = at[part];
    at = (at[part] = next !== null && typeof next === "object" && !Array.isArray(next) ? next : {}) as Record<string, unknown>;
  }
  at[parts[parts.length - 1]!] = value;
  return copy;
}

/**
 * A necessary condition on one field: its value (an element of it, for an array) equals one
 * of `values`, or starts or ends with one, case-folded (case-fold.ts) when `caseInsensitive`.
 */
export interface Anchor {
  field: string;
  kind: "exact" | "prefix" | "suffix";
  value: string;
  caseInsensitive: boolean;
}

const ANCHOR_KINDS: readonly Anchor["kind"][] = ["exact", "prefix", "suffix"];

/** The anchor a wildcard pattern gives: the whole of it, its literal head or its literal tail. */
function patternAnchor(field: string, pattern: string, caseInsensitive: boolean): Anchor | undefined {
  const fold = (text: string) => (caseInsensitive ? foldCase(text) : text);
  const first = pattern.search(/[*?]/);
  if (first < 0) return { field, kind: "exact", value: fold(pattern), caseInsensitive };
  if (first > 0) return { field, kind: "prefix", value: fold(pattern.slice(0, first)), caseInsensitive };
  const tail = pattern.slice(Math.max(pattern.lastIndexOf("*"), pattern.lastIndexOf("?")) + 1);
  return tail !== "" ? { field, kind: "suffix", value: fold(tail), caseInsensitive } : undefined;
}

/**
 * Anchors of `expr` such that, whenever `expr` holds on a document, at least one of them
 * holds (undefined: none can be named; empty: `expr` never holds). `rank` says which fields
 * may anchor, lower first (undefined: not that one); `possible` says whether a part can hold
 * at all (the documents' shapes: a branch on a field never filled needs no anchor). `and`
 * takes its best-ranked item's; `or` needs every possible item's and lists them all. Only
 * conditions that are false on a missing field anchor (`==`, `in`, `:`, like and regex on a
 * field of strings), never one under `not`.
 */
export function anchorsOf(expr: EqlExpr, rank: (field: string) => number | undefined, possible: (part: EqlExpr) => boolean = () => true): Anchor[] | undefined {
  if (!possible(expr)) return [];
  const worst = (anchors: Anchor[]) => Math.max(...anchors.map((a) => rank(a.field)! * ANCHOR_KINDS.length + ANCHOR_KINDS.indexOf(a.kind)));
  switch (expr.type) {
    case "and": {
      let best: Anchor[] | undefined;
      for (const item of expr.items) {
        const anchors = anchorsOf(item, rank, possible);
        if (anchors?.length === 0) return anchors;
        if (anchors !== undefined && (best === undefined || worst(anchors) < worst(best))) best = anchors;
      }
      return best;
    }
    case "or": {
      const all: Anchor[] = [];
      for (const item of expr.items) {
        const anchors = anchorsOf(item, rank, possible);
        if (anchors === undefined) return undefined;
        all.push(...anchors);
      }
      return all;
    }
    case "compare": {
      const { left, right } = expr;
      if (expr.op !== "==" || left.type !== "field" || rank(left.path) === undefined || right.type !== "literal" || typeof right.value !== "string") return undefined;
      return [{ field: left.path, kind: "exact", value: right.value, caseInsensitive: false }];
    }
    case "in": {
      const { left } = expr;
      if (expr.negated || left.type !== "field" || rank(left.path) === undefined) return undefined;
      const anchors: Anchor[] = [];
      for (const value of expr.values) {
        if (typeof value !== "string") return undefined;
        anchors.push({ field: left.path, kind: "exact", value: expr.caseInsensitive ? foldCase(value) : value, caseInsensitive: expr.caseInsensitive });
      }
      return anchors;
    }
    case "wildcard": {
      const { left } = expr;
      if (left.type !== "field" || rank(left.path) === undefined) return undefined;
      const anchors: Anchor[] = [];
      for (const pattern of expr.patterns) {
        const anchor = patternAnchor(left.path, pattern, expr.caseInsensitive);
        if (anchor === undefined) return undefined;
        anchors.push(anchor);
      }
      return anchors;
    }
    case "regex": {
      const { left } = expr;
      if (left.type !== "field" || rank(left.path) === undefined) return undefined;
      const anchors: Anchor[] = [];
      for (const pattern of expr.patterns) {
        const prefix = regexLiteralPrefix(pattern);
        if (prefix === undefined) return undefined;
        const value = expr.caseInsensitive ? foldCase(prefix.text) : prefix.text;
        anchors.push({ field: left.path, kind: prefix.whole ? "exact" : "prefix", value, caseInsensitive: expr.caseInsensitive });
      }
      return anchors;
    }
    default:
      return undefined;
  }
}
