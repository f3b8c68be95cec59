/**
 * Elastic's rules as one program: every query (a rule's, or a sequence's step) is filed under
 * what a document must have for it to match (analysis.ts anchors: `process.name` is one of
 * these names, `process.executable` starts with `/tmp/`, …), so a document reaches only the
 * queries it can match instead of every one. With Elastic's Linux rules loaded most queries
 * pin `process.name`, and an exec of a program none of them names ran ~200 of them before.
 *
 * A query is filed under its best-ranked anchors (INDEX_FIELDS order, exact before prefix
 * before suffix), leaving out the branches no document sockeye makes can satisfy (shapes.ts);
 * one without any anchor is a candidate for every document, one that can never hold for none. The index only
 * ever narrows: a candidate is still tested in full, and a property test holds it to never
 * skipping a query that matches (test/unit/elastic/query-index.test.ts).
 */
import { anchorsOf, type Anchor } from "../../eql/analysis.js";
import { foldCase } from "../../eql/case-fold.js";
import { fieldGetter, type CompiledEql, type EqlDocument } from "../../eql/compile.js";
import { partCanHold } from "./shapes.js";

/** Fields that anchor by default, most telling first: an exec's name says more than its event.action. */
export const INDEX_FIELDS: readonly string[] = [
  "process.name", "process.executable", "process.parent.name", "process.parent.executable", "process.args",
  "process.parent.args", "destination.port", "user.id", "event.action", "event.type",
];
/** Prefixes and suffixes are filed by up to this many characters: enough to tell /tmp/ from /usr/. */
const AFFIX_KEY_LENGTH = 4;

/** One field's anchors of one case mode: value (or its first/last characters) → query numbers. */
interface FieldTable {
  exact: Map<string, number[]>;
  prefix: Map<string, number[]>;
  suffix: Map<string, number[]>;
  /** The key lengths `prefix` and `suffix` hold, each once. */
  prefixLengths: number[];
  suffixLengths: number[];
}

interface IndexedField {
  get: (doc: EqlDocument) => unknown;
  /** [case-sensitive, case-insensitive]; undefined when no anchor of that mode names the field. */
  tables: [FieldTable | undefined, FieldTable | undefined];
}

function file(map: Map<string, number[]>, key: string, query: number): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [query]);
  else if (list[list.length - 1] !== query) list.push(query);
}

/** Sets every listed query's mark to `stamp`, adding those not marked yet to `reached`. */
function markAll(marks: Uint32Array, list: readonly number[] | undefined, stamp: number, reached: number[]): void {
  if (list === undefined) return;
  for (let k = 0; k < list.length; k++) {
    const query = list[k]!;
    if (marks[query] !== stamp) {
      marks[query] = stamp;
      reached.push(query);
    }
  }
}

/** What `:` and the index match a value by: strings, and numbers and booleans by their text. */
function textOf(value: unknown): string | undefined {
  switch (typeof value) {
    case "string":
      return value;
    case "number":
    case "boolean":
    case "bigint":
      return String(value);
    default:
      return undefined;
  }
}

/** Marks the queries `table` files `key` under (exactly, or by its first or last characters). */
function markKey(marks: Uint32Array, table: FieldTable, key: string, stamp: number, reached: number[]): void {
  markAll(marks, table.exact.get(key), stamp, reached);
  for (const length of table.prefixLengths) if (key.length >= length) markAll(marks, table.prefix.get(key.slice(0, length)), stamp, reached);
  for (const length of table.suffixLengths) if (key.length >= length) markAll(marks, table.suffix.get(key.slice(key.length - length)), stamp, reached);
}

/** One field's anchors of one group in one case mode, tested on a document directly (QueryIndex.holds). */
interface FieldCheck {
  field: string;
  get: (doc: EqlDocument) => unknown;
  caseInsensitive: boolean;
  exact: Set<string>;
  prefixes: string[];
  suffixes: string[];
}

export class QueryIndex {
  private readonly fields = new Map<string, IndexedField>();
  /**
   * Each group's anchors by field, for holds(); null: a query of the group has no anchor
   * (always a candidate); an empty list: no query of the group can hold.
   */
  private readonly checks: (FieldCheck[] | null)[] = [];
  private fieldList: IndexedField[] = [];
  /** Queries without an anchor: candidates for every document. */
  private readonly unanchored: number[] = [];
  private readonly marks: Uint32Array;
  private stamp = 0;
  private lastEvent: object | undefined;
  /** The groups the last event's document reached, ascending. */
  private reached: number[] = [];

  /**
   * `queries[i]` is query number i; an undefined one is never a candidate. Only `fields`
   * anchor, the first ones preferred. With `groupOf`, candidates are asked by group (a rule:
   * one of its queries is a candidate), `groupOf[i]` being query i's.
   */
  constructor(queries: readonly (CompiledEql | undefined)[], fields: readonly string[] = INDEX_FIELDS, groupOf?: readonly number[]) {
    this.marks = new Uint32Array(groupOf !== undefined ? Math.max(0, ...groupOf) + 1 : queries.length);
    const rank = new Map(fields.map((field, k) => [field, k]));
    queries.forEach((query, number) => {
      if (query === undefined) return;
      const group = groupOf?.[number] ?? number;
      const anchors = anchorsOf(query.where, (field) => rank.get(field), (part) => partCanHold(query.category, part));
      if (anchors === undefined) this.unanchored.push(group);
      else for (const anchor of anchors) this.fileAnchor(anchor, group);
      this.addChecks(group, anchors);
    });
    for (let group = 0; group < this.marks.length; group++) if (this.checks[group] === undefined) this.checks[group] = [];
  }

  private addChecks(group: number, anchors: Anchor[] | undefined): void {
    if (anchors === undefined) {
      this.checks[group] = null;
      return;
    }
    const checks = this.checks[group];
    if (checks === null) return;
    const list = checks ?? (this.checks[group] = []);
    for (const anchor of anchors) {
      let check = list.find((c) => c.caseInsensitive === anchor.caseInsensitive && c.field === anchor.field);
      if (check === undefined) {
        check = { field: anchor.field, get: fieldGetter(anchor.field), caseInsensitive: anchor.caseInsensitive, exact: new Set(), prefixes: [], suffixes: [] };
        list.push(check);
      }
      if (anchor.kind === "exact") check.exact.add(anchor.value);
      else if (anchor.kind === "prefix") check.prefixes.push(anchor.value);
      else check.suffixes.push(anchor.value);
    }
  }

  /**
   * Whether group (or query) `group` can match `doc`, from its own anchors alone: for a few
   * groups per document (those another index let through) this is cheaper than marking every
   * query by every field, and it tests whole prefixes and suffixes, not their first characters.
   * The same anchors as isCandidate, so the same guarantee: never false for a matching document.
   */
  holds(doc: EqlDocument, group: number): boolean {
    const checks = this.checks[group];
    if (checks === null) return true;
    if (checks === undefined) return false;
    for (let c = 0; c < checks.length; c++) {
      const check = checks[c]!;
      const raw = check.get(doc);
      const values: readonly unknown[] = Array.isArray(raw) ? raw : [raw];
      for (let k = 0; k < values.length; k++) {
        const text = textOf(values[k]);
        if (text === undefined) continue;
        const key = check.caseInsensitive ? foldCase(text) : text;
        if (check.exact.has(key)) return true;
        for (const prefix of check.prefixes) if (key.startsWith(prefix)) return true;
        for (const suffix of check.suffixes) if (key.endsWith(suffix)) return true;
      }
    }
    return false;
  }

  private fileAnchor(anchor: Anchor, query: number): void {
    let field = this.fields.get(anchor.field);
    if (field === undefined) {
      this.fields.set(anchor.field, (field = { get: fieldGetter(anchor.field), tables: [undefined, undefined] }));
      this.fieldList = [...this.fields.values()];
    }
    const mode = anchor.caseInsensitive ? 1 : 0;
    const table = (field.tables[mode] ??= {
      exact: new Map<string, number[]>(), prefix: new Map<string, number[]>(), suffix: new Map<string, number[]>(),
      prefixLengths: [], suffixLengths: [],
    });
    const length = Math.min(anchor.value.length, AFFIX_KEY_LENGTH);
    switch (anchor.kind) {
      case "exact":
        file(table.exact, anchor.value, query);
        return;
      case "prefix":
        if (!table.prefixLengths.includes(length)) table.prefixLengths.push(length);
        file(table.prefix, anchor.value.slice(0, length), query);
        return;
      case "suffix":
        if (!table.suffixLengths.includes(length)) table.suffixLengths.push(length);
        file(table.suffix, anchor.value.slice(anchor.value.length - length), query);
        return;
    }
  }

  /**
   * Whether query (or group) `query` can match `doc`, the document of `event`: the candidates
   * are worked out once per event, for every query at once.
   */
  isCandidate(event: object, doc: EqlDocument, query: number): boolean {
    if (event !== this.lastEvent) this.mark(event, doc);
    return this.marks[query] === this.stamp;
  }

  /** How many groups can match `doc`, the document of `event` (the candidates isCandidate says yes to). */
  candidateCount(event: object, doc: EqlDocument): number {
    if (event !== this.lastEvent) this.mark(event, doc);
    return this.reached.length;
  }

  /** The groups that can match `doc`, the document of `event`, ascending (valid until the next event). */
  candidates(event: object, doc: EqlDocument): readonly number[] {
    if (event !== this.lastEvent) this.mark(event, doc);
    return this.reached;
  }

  private mark(event: object, doc: EqlDocument): void {
    this.lastEvent = event;
    if (++this.stamp === 0xffffffff) {
      this.marks.fill(0);
      this.stamp = 1;
    }
    const { marks, stamp } = this;
    const reached: number[] = [];
    markAll(marks, this.unanchored, stamp, reached);
    for (const field of this.fieldList) {
      const [exact, folded] = field.tables;
      const raw = field.get(doc);
      const values: readonly unknown[] = Array.isArray(raw) ? raw : [raw];
      for (let k = 0; k < values.length; k++) {
        const text = textOf(values[k]);
        if (text === undefined) continue;
        if (exact !== undefined) markKey(marks, exact, text, stamp, reached);
        if (folded !== undefined) markKey(marks, folded, foldCase(text), stamp, reached);
      }
    }
    this.reached = reached.sort((a, b) => a - b);
  }
}
