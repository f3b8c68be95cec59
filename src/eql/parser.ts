/**
 * A recursive-descent parser for the part of Elastic's EQL that Linux detection rules use
 * (docs/design.md §4):
 *
 *   <category> where <expr>
 *   sequence [by k, …] [with maxspan=<n><unit>] [<category> where <expr>] [by k, …] [with runs=N] … [until […]]
 *
 * with and/or/not, parentheses, ==, !=, <, <=, >, >=, in, in~, not in, `:` (wildcard, also
 * with a parenthesised list), like/like~, regex/regex~, function calls (name~ for the
 * case-insensitive form), string literals ("…", '…', """…"""), numbers, true/false/null and
 * dotted field paths, optionally marked `?field` (tokens: lexer.ts). What EQL has beyond that (sample, join,
 * pipes) is rejected with an `EqlError` naming the construct and its line:column, never
 * silently mis-evaluated; so is nesting past MAX_EQL_NESTING, which would exhaust the stack.
 */

import { EqlError } from "./error.js";
import { lex, type Token } from "./lexer.js";

export { EqlError } from "./error.js";

export type Literal = string | number | boolean | null;

export type CompareOp = "==" | "!=" | "<" | "<=" | ">" | ">=";

/** Something that has values in a document: a field, a literal, or a function of those. */
export type ValueExpr =
  /** `optional`: written `?path`; as a join key a missing value then joins as null. */
  | { type: "field"; path: string; optional: boolean }
  | { type: "literal"; value: Literal }
  /** `name` lower-cased (EQL function names are case-insensitive); `~` marks the case-insensitive variant. */
  | { type: "call"; name: string; args: ValueExpr[]; caseInsensitive: boolean; line: number; column: number };

export type EqlExpr =
  /** n-ary, so that a long chain of `and`s is a list, not a tree as deep as the chain. */
  | { type: "and" | "or"; items: EqlExpr[] }
  | { type: "not"; expr: EqlExpr }
  | { type: "const"; value: boolean }
  | { type: "compare"; op: CompareOp; left: ValueExpr; right: ValueExpr }
  /** `in` / `in~` / `not in`. */
  | { type: "in"; left: ValueExpr; values: Literal[]; caseInsensitive: boolean; negated: boolean }
  /** `:` (always case-insensitive) and like / like~. */
  | { type: "wildcard"; left: ValueExpr; patterns: string[]; caseInsensitive: boolean }
  | { type: "regex"; left: ValueExpr; patterns: string[]; caseInsensitive: boolean; line: number; column: number }
  /** A function call used as a condition: `cidrMatch(destination.ip, "10.0.0.0/8")`. */
  | { type: "truthy"; value: ValueExpr };

export interface EqlEventQuery {
  kind: "event";
  category: string;
  where: EqlExpr;
}

export interface EqlSequenceStep {
  query: EqlEventQuery;
  /** The step's own join keys, appended to the sequence's. */
  by: ValueExpr[];
}

export interface EqlSequenceQuery {
  kind: "sequence";
  /** Join keys every step shares. */
  by: ValueExpr[];
  /** Most time from the first to the last event of a match; undefined: unbounded. */
  maxspanMs: number | undefined;
  /** `with runs=N` steps are already repeated here, N times in a row. */
  steps: EqlSequenceStep[];
  until: EqlSequenceStep | undefined;
}

export type EqlQuery = EqlEventQuery | EqlSequenceQuery;

const KEYWORDS = new Set(["and", "or", "not", "in", "like", "regex", "where", "true", "false", "null", "by", "with", "until"]);
const UNSUPPORTED_QUERY_KINDS = new Set(["sample", "join"]);

/**
 * Parentheses, `not`s and function calls nested deeper than this are refused: the parser and
 * the compiled predicate recurse once per level, and real rules nest fewer than ten.
 */
export const MAX_EQL_NESTING = 100;
/** `with runs=N` above this is refused: each run is a step of its own. */
export const MAX_EQL_RUNS = 100;

const TIME_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

class Parser {
  private index = 0;
  private depth = 0;
  constructor(private readonly tokens: Token[]) {}

  private get peek(): Token {
    return this.tokens[this.index]!;
  }
  private peekAt(offset: number): Token {
    return this.tokens[Math.min(this.index + offset, this.tokens.length - 1)]!;
  }
  private next(): Token {
    const token = this.peek;
    if (token.kind !== "eof") this.index++;
    return token;
  }
  private fail(problem: string, token: Token = this.peek): never {
    throw new EqlError(problem, token.line, token.column);
  }
  private isKeyword(word: string, token: Token = this.peek): boolean {
    return token.kind === "ident" && token.text.toLowerCase() === word;
  }
  private isOp(op: string, token: Token = this.peek): boolean {
    return token.kind === "op" && token.text === op;
  }
  private expectOp(op: string, what: string): Token {
    if (!this.isOp(op)) this.fail(`expected ${JSON.stringify(op)} ${what}, found ${describe(this.peek)}`);
    return this.next();
  }
  private enter(token: Token): void {
    if (++this.depth > MAX_EQL_NESTING) this.fail(`nested deeper than ${MAX_EQL_NESTING} levels`, token);
  }
  private leave(): void {
    this.depth--;
  }
  /** Whether `token` follows the previous token with no space (`in~`, `startsWith~(`). */
  private adjacent(token: Token): boolean {
    const prev = this.tokens[this.index - 1]!;
    return token.line === prev.line && token.column === prev.column + prev.text.length;
  }

  parseQuery(): EqlQuery {
    const query = this.isKeyword("sequence") ? this.parseSequence() : this.parseEventQuery();
    const rest = this.peek;
    if (this.isOp("|", rest)) this.fail("pipes (|) are not supported", rest);
    if (rest.kind !== "eof") this.fail(`unexpected ${describe(rest)}`, rest);
    return query;
  }

  private parseEventQuery(): EqlEventQuery {
    const first = this.peek;
    if (first.kind === "ident" && UNSUPPORTED_QUERY_KINDS.has(first.text.toLowerCase())) {
      this.fail(`${first.text.toLowerCase()} queries are not supported (only single events and sequences)`);
    }
    if (first.kind !== "ident" || KEYWORDS.has(first.text.toLowerCase()) || first.text.toLowerCase() === "sequence") {
      this.fail(`expected an event category, found ${describe(first)}`);
    }
    if (first.text.includes(".")) this.fail(`expected an event category, found field ${first.text}`);
    this.next();
    if (!this.isKeyword("where")) this.fail(`expected "where" after the event category, found ${describe(this.peek)}`);
    this.next();
    return { kind: "event", category: first.text.toLowerCase(), where: this.parseOr() };
  }

  /** sequence [by k, …] [with maxspan=N<unit>] [step] [by …] [with runs=N] … [until [step] [by …]] */
  private parseSequence(): EqlSequenceQuery {
    this.next();
    let by: ValueExpr[] = [];
    let maxspanMs: number | undefined;
    for (let round = 0; round < 2; round++) {
      if (this.isKeyword("by") && by.length === 0) {
        this.next();
        by = this.parseKeyList();
      } else if (this.isKeyword("with") && maxspanMs === undefined) {
        this.next();
        maxspanMs = this.parseWithNumber("maxspan", true);
      }
    }
    const steps: EqlSequenceStep[] = [];
    let until: EqlSequenceStep | undefined;
    while (this.isOp("[")) {
      const step = this.parseStep();
      let runs = 1;
      if (this.isKeyword("with")) {
        const at = this.next();
        runs = this.parseWithNumber("runs", false);
        if (!(runs >= 1 && runs <= MAX_EQL_RUNS && Number.isInteger(runs))) this.fail(`runs must be an integer from 1 to ${MAX_EQL_RUNS}`, at);
      }
      for (let k = 0; k < runs; k++) steps.push(step);
    }
    if (this.isKeyword("until")) {
      this.next();
      if (!this.isOp("[")) this.fail(`expected "[" after until, found ${describe(this.peek)}`);
      until = this.parseStep();
    }
    if (steps.length < 2) this.fail("a sequence needs at least two steps");
    for (const step of [...steps, ...(until !== undefined ? [until] : [])]) {
      if (step.by.length !== steps[0]!.by.length) this.fail("every step of a sequence needs the same number of by keys");
    }
    return { kind: "sequence", by, maxspanMs, steps, until };
  }

  private parseStep(): EqlSequenceStep {
    this.expectOp("[", "to open a sequence step");
    const query = this.parseEventQuery();
    this.expectOp("]", "to close the sequence step");
    let by: ValueExpr[] = [];
    if (this.isKeyword("by")) {
      this.next();
      by = this.parseKeyList();
    }
    return { query, by };
  }

  private parseKeyList(): ValueExpr[] {
    const keys = [this.parseValue()];
    while (this.isOp(",")) {
      this.next();
      keys.push(this.parseValue());
    }
    for (const key of keys) if (key.type === "literal") this.fail("a join key must be a field or a function of fields");
    return keys;
  }

  /** `name=N` after `with`; with `time`, N takes a unit (ms, s, m, h, d) and is returned in ms. */
  private parseWithNumber(name: string, time: boolean): number {
    if (!this.isKeyword(name)) this.fail(`expected ${name}= after "with", found ${describe(this.peek)}`);
    this.next();
    this.expectOp("=", `after ${name}`);
    const number = this.peek;
    if (number.kind !== "number" || !(number.num! >= 0)) this.fail(`expected a number after ${name}=, found ${describe(number)}`);
    this.next();
    if (!time) return number.num!;
    const unit = this.peek;
    if (unit.kind !== "ident" || !this.adjacent(unit) || !(unit.text.toLowerCase() in TIME_UNITS)) {
      this.fail(`${name} needs a time unit (ms, s, m, h, d), found ${describe(unit)}`);
    }
    this.next();
    return number.num! * TIME_UNITS[unit.text.toLowerCase()]!;
  }

  private parseOr(): EqlExpr {
    const items = [this.parseAnd()];
    while (this.isKeyword("or")) {
      this.next();
      items.push(this.parseAnd());
    }
    return items.length === 1 ? items[0]! : { type: "or", items };
  }

  private parseAnd(): EqlExpr {
    const items = [this.parseNot()];
    while (this.isKeyword("and")) {
      this.next();
      items.push(this.parseNot());
    }
    return items.length === 1 ? items[0]! : { type: "and", items };
  }

  private parseNot(): EqlExpr {
    if (this.isKeyword("not")) {
      const token = this.next();
      this.enter(token);
      const expr: EqlExpr = { type: "not", expr: this.parseNot() };
      this.leave();
      return expr;
    }
    return this.parsePrimary();
  }

  private parsePrimary(): EqlExpr {
    const token = this.peek;
    if (this.isOp("(")) {
      this.next();
      this.enter(token);
      const inner = this.parseOr();
      this.expectOp(")", "to close the parenthesis");
      this.leave();
      return inner;
    }
    if (this.isKeyword("true") || this.isKeyword("false")) {
      this.next();
      return { type: "const", value: token.text.toLowerCase() === "true" };
    }
    if (token.kind === "ident" && !KEYWORDS.has(token.text.toLowerCase())) {
      const left = this.parseValue();
      if (left.type === "call" && !this.startsCondition(this.peek)) return { type: "truthy", value: left };
      return this.parseCondition(left);
    }
    if (token.kind === "eof") this.fail("unexpected end of query");
    if (token.kind === "string" || token.kind === "number" || this.isKeyword("null", token)) {
      this.fail(`a condition must start with a field name or a function, found ${describe(token)}`);
    }
    this.fail(`unexpected ${describe(token)}`);
  }

  /** Whether `token` is an operator that continues a condition after a value. */
  private startsCondition(token: Token): boolean {
    if (token.kind === "op") return ["==", "!=", "<", "<=", ">", ">=", ":"].includes(token.text);
    if (token.kind !== "ident") return false;
    const word = token.text.toLowerCase();
    return word === "in" || word === "like" || word === "regex" || (word === "not" && this.isKeyword("in", this.peekAt(1)));
  }

  /** A field, a literal, or a function call (whose name may end in `~`). */
  private parseValue(): ValueExpr {
    const token = this.peek;
    if (token.kind === "ident" && !KEYWORDS.has(token.text.toLowerCase())) {
      this.next();
      const tilde = this.isOp("~") && this.adjacent(this.peek) && this.isOp("(", this.peekAt(1));
      if (tilde) this.next();
      if (!this.isOp("(")) {
        if (tilde) this.fail(`expected "(" after ${token.text}~`);
        return { type: "field", path: token.text, optional: token.optional === true };
      }
      if (token.text.includes(".") || token.optional === true) this.fail(`${token.optional === true ? "?" : ""}${token.text} is not a function name`, token);
      this.next();
      this.enter(token);
      const args: ValueExpr[] = [];
      if (!this.isOp(")")) {
        args.push(this.parseValue());
        while (this.isOp(",")) {
          this.next();
          args.push(this.parseValue());
        }
      }
      this.expectOp(")", `to close the call of ${token.text}`);
      this.leave();
      return { type: "call", name: token.text.toLowerCase(), args, caseInsensitive: tilde, line: token.line, column: token.column };
    }
    return { type: "literal", value: this.parseLiteral() };
  }

  /** Parses the operator and right-hand side after a value. */
  private parseCondition(left: ValueExpr): EqlExpr {
    const opToken = this.peek;
    const what = left.type === "field" ? left.path : left.type === "call" ? `${left.name}()` : "the value";
    if (opToken.kind === "op") {
      switch (opToken.text) {
        case "==":
        case "!=":
        case "<":
        case "<=":
        case ">":
        case ">=": {
          this.next();
          return { type: "compare", op: opToken.text, left, right: this.parseValue() };
        }
        case ":": {
          this.next();
          const patterns = this.parseStringOrList(":");
          return { type: "wildcard", left, patterns, caseInsensitive: true };
        }
        default:
          this.fail(`unknown operator ${JSON.stringify(opToken.text)} after ${what}`);
      }
    }
    if (opToken.kind === "ident") {
      const word = opToken.text.toLowerCase();
      if (word === "not" && this.isKeyword("in", this.peekAt(1))) {
        this.next();
        this.next();
        const caseInsensitive = this.takeTilde();
        return { type: "in", left, values: this.parseLiteralList("not in"), caseInsensitive, negated: true };
      }
      if (word === "in") {
        this.next();
        const caseInsensitive = this.takeTilde();
        return { type: "in", left, values: this.parseLiteralList("in"), caseInsensitive, negated: false };
      }
      if (word === "like" || word === "regex") {
        this.next();
        const caseInsensitive = this.takeTilde();
        const patterns = this.parseStringOrList(word);
        return word === "like"
          ? { type: "wildcard", left, patterns, caseInsensitive }
          : { type: "regex", left, patterns, caseInsensitive, line: opToken.line, column: opToken.column };
      }
      if (["and", "or"].includes(word)) this.fail(`field ${what} needs an operator (bare fields are not supported)`, opToken);
      this.fail(`unknown operator ${JSON.stringify(opToken.text)} after ${what}`);
    }
    if (opToken.kind === "eof" || this.isOp(")", opToken) || this.isOp("]", opToken)) {
      this.fail(`field ${what} needs an operator (bare fields are not supported)`, opToken);
    }
    this.fail(`unknown operator ${describe(opToken)} after ${what}`);
  }

  /** `~` right after in / like / regex (no space) makes the operator case-insensitive. */
  private takeTilde(): boolean {
    if (this.isOp("~") && this.adjacent(this.peek)) {
      this.next();
      return true;
    }
    return false;
  }

  private parseLiteral(): Literal {
    const token = this.peek;
    if (token.kind === "string") {
      this.next();
      return token.text;
    }
    if (token.kind === "number") {
      this.next();
      return token.num!;
    }
    if (this.isKeyword("true")) return (this.next(), true);
    if (this.isKeyword("false")) return (this.next(), false);
    if (this.isKeyword("null")) return (this.next(), null);
    this.fail(`expected a value, found ${describe(token)}`);
  }

  private parseLiteralList(op: string): Literal[] {
    this.expectOp("(", `after ${op}`);
    const values: Literal[] = [this.parseListLiteral(op)];
    while (this.isOp(",")) {
      this.next();
      values.push(this.parseListLiteral(op));
    }
    this.expectOp(")", `to close the ${op} list`);
    return values;
  }

  private parseListLiteral(op: string): Literal {
    const token = this.peek;
    if (token.kind === "ident" && !KEYWORDS.has(token.text.toLowerCase())) {
      this.fail(`${op} lists of fields or functions (${token.text}) are not supported`);
    }
    return this.parseLiteral();
  }

  private parseString(op: string): string {
    const token = this.peek;
    if (token.kind !== "string") this.fail(`${op} needs a string pattern, found ${describe(token)}`);
    this.next();
    return token.text;
  }

  private parseStringOrList(op: string): string[] {
    if (!this.isOp("(")) return [this.parseString(op)];
    this.next();
    const patterns = [this.parseString(op)];
    while (this.isOp(",")) {
      this.next();
      patterns.push(this.parseString(op));
    }
    this.expectOp(")", `to close the ${op} list`);
    return patterns;
  }
}

function describe(token: Token): string {
  switch (token.kind) {
    case "eof":
      return "end of query";
    case "string":
      return `string ${JSON.stringify(token.text.length > 20 ? `${token.text.slice(0, 20)}…` : token.text)}`;
    case "number":
      return `number ${token.text}`;
    case "op":
      return JSON.stringify(token.text);
    case "ident":
      return JSON.stringify(token.text);
  }
}

/**
 * Parses a single-event query (`<category> where <expr>`) or a sequence; throws `EqlError`
 * for anything outside the supported subset.
 */
export function parseEql(query: string): EqlQuery {
  return new Parser(lex(query)).parseQuery();
}
