/**
 * A recursive-descent parser for the single-event subset of Elastic's EQL (design.md §4):
 *
 *   <category> where <expr>
 *
 * with and/or/not, parentheses, ==, !=, <, <=, >, >=, in, in~, not in, `:` (wildcard, also
 * with a parenthesised list), like/like~, regex/regex~, string literals ("…", '…', """…"""),
 * numbers, true/false/null and dotted field paths, optionally marked `?field`. Everything else EQL has (sequence,
 * sample, join, pipes, function calls, field-to-field comparisons) is rejected with an
 * `EqlError` naming the construct and its line:column, never silently mis-evaluated.
 */

import { EXIT_BAD_INPUT, SockeyeError } from "../errors.js";

/** A query this module cannot parse or will not run. The message is one line. */
export class EqlError extends SockeyeError {
  /** 1-based position in the query text. */
  readonly line: number;
  readonly column: number;
  /** The message without the position suffix. */
  readonly problem: string;
  constructor(problem: string, line: number, column: number) {
    super(`${problem} at ${line}:${column}`, "SOCKEYE_EQL", EXIT_BAD_INPUT);
    this.problem = problem;
    this.line = line;
    this.column = column;
  }
}

export type Literal = string | number | boolean | null;

export type CompareOp = "==" | "!=" | "<" | "<=" | ">" | ">=";

export type EqlExpr =
  | { type: "and" | "or"; left: EqlExpr; right: EqlExpr }
  | { type: "not"; expr: EqlExpr }
  | { type: "compare"; op: CompareOp; field: string; value: Literal }
  /** `in` / `in~` / `not in`. */
  | { type: "in"; field: string; values: Literal[]; caseInsensitive: boolean; negated: boolean }
  /** `:` (always case-insensitive) and like / like~. */
  | { type: "wildcard"; field: string; patterns: string[]; caseInsensitive: boolean }
  | { type: "regex"; field: string; patterns: string[]; caseInsensitive: boolean; line: number; column: number };

export interface EqlQuery {
  category: string;
  where: EqlExpr;
}

type TokenKind = "ident" | "string" | "number" | "op" | "eof";
interface Token {
  kind: TokenKind;
  /** Identifier text, operator text, or the decoded string. */
  text: string;
  num?: number;
  line: number;
  column: number;
}

const OPERATORS = ["==", "!=", "<=", ">=", "<", ">", ":", "(", ")", ",", "|", "[", "]", "=", "~"] as const;

function lex(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const pos = (at: number) => ({ line, column: at - lineStart + 1 });
  const advanceOver = (from: number, to: number) => {
    for (let k = from; k < to; k++) {
      if (source[k] === "\n") {
        line++;
        lineStart = k + 1;
      }
    }
  };

  while (i < source.length) {
    const ch = source[i]!;
    if (ch === "\n" || ch === " " || ch === "\t" || ch === "\r") {
      advanceOver(i, i + 1);
      i++;
      continue;
    }
    // Comments: // to end of line, /* ... */.
    if (ch === "/" && source[i + 1] === "/") {
      while (i < source.length && source[i] !== "\n") i++;
      continue;
    }
    if (ch === "/" && source[i + 1] === "*") {
      const end = source.indexOf("*/", i + 2);
      if (end < 0) throw new EqlError("unterminated comment", pos(i).line, pos(i).column);
      advanceOver(i, end + 2);
      i = end + 2;
      continue;
    }
    const start = pos(i);

    if (ch === '"' && source.startsWith('"""', i)) {
      const end = source.indexOf('"""', i + 3);
      if (end < 0) throw new EqlError("unterminated triple-quoted string", start.line, start.column);
      tokens.push({ kind: "string", text: source.slice(i + 3, end), ...start });
      advanceOver(i, end + 3);
      i = end + 3;
      continue;
    }
    if (ch === '"' || ch === "'") {
      let k = i + 1;
      let out = "";
      for (;;) {
        const c = source[k];
        if (c === undefined || c === "\n") throw new EqlError("unterminated string", start.line, start.column);
        if (c === ch) break;
        if (c === "\\") {
          const e = source[k + 1];
          const simple: Record<string, string> = { n: "\n", r: "\r", t: "\t", '"': '"', "'": "'", "\\": "\\", "0": "\0" };
          if (e !== undefined && e in simple) {
            out += simple[e];
            k += 2;
            continue;
          }
          if (e === "u" && source[k + 2] === "{") {
            const close = source.indexOf("}", k + 3);
            const hex = close > 0 ? source.slice(k + 3, close) : "";
            if (!/^[0-9a-fA-F]{1,8}$/.test(hex)) {
              throw new EqlError("bad \\u{…} escape in string", line, k - lineStart + 1);
            }
            out += String.fromCodePoint(Number.parseInt(hex, 16));
            k = close + 1;
            continue;
          }
          throw new EqlError(`unknown escape \\${e ?? ""} in string`, line, k - lineStart + 1);
        }
        out += c;
        k++;
      }
      tokens.push({ kind: "string", text: out, ...start });
      i = k + 1;
      continue;
    }
    const numMatch = /^-?\d+(\.\d+)?([eE][+-]?\d+)?/.exec(source.slice(i, i + 64));
    if (numMatch && (ch !== "-" || /\d/.test(source[i + 1] ?? ""))) {
      tokens.push({ kind: "number", text: numMatch[0], num: Number(numMatch[0]), ...start });
      i += numMatch[0].length;
      continue;
    }
    const identMatch = /^[A-Za-z_@][A-Za-z0-9_@]*(\.[A-Za-z_@][A-Za-z0-9_@]*)*/.exec(source.slice(i, i + 512));
    if (identMatch) {
      tokens.push({ kind: "ident", text: identMatch[0], ...start });
      i += identMatch[0].length;
      continue;
    }
    if (ch === "`") throw new EqlError("escaped field names (`…`) are not supported", start.line, start.column);
    if (ch === "?" && (source[i + 1] === '"' || source[i + 1] === "'")) {
      throw new EqlError("raw strings (?\"…\") are not supported", start.line, start.column);
    }
    // `?field` marks an optional field (Elastic: no error when the index lacks it). Every
    // field here is optional already (missing = the condition is false), so the mark is read
    // and dropped.
    if (ch === "?" && /[A-Za-z_@]/.test(source[i + 1] ?? "")) {
      i++;
      continue;
    }
    const op = OPERATORS.find((candidate) => source.startsWith(candidate, i));
    if (op !== undefined) {
      tokens.push({ kind: "op", text: op, ...start });
      i += op.length;
      continue;
    }
    throw new EqlError(`unexpected character ${JSON.stringify(ch)}`, start.line, start.column);
  }
  tokens.push({ kind: "eof", text: "", ...pos(i) });
  return tokens;
}

const KEYWORDS = new Set(["and", "or", "not", "in", "like", "regex", "where", "true", "false", "null"]);
const UNSUPPORTED_QUERY_KINDS = new Set(["sequence", "sample", "join"]);

class Parser {
  private index = 0;
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

  parseQuery(): EqlQuery {
    const first = this.peek;
    if (first.kind === "ident" && UNSUPPORTED_QUERY_KINDS.has(first.text.toLowerCase())) {
      this.fail(`${first.text.toLowerCase()} queries are not supported (only single-event queries)`);
    }
    if (first.kind !== "ident" || KEYWORDS.has(first.text.toLowerCase())) {
      this.fail(`expected an event category, found ${describe(first)}`);
    }
    if (first.text.includes(".")) this.fail(`expected an event category, found field ${first.text}`);
    this.next();
    if (!this.isKeyword("where")) this.fail(`expected "where" after the event category, found ${describe(this.peek)}`);
    this.next();
    const where = this.parseOr();
    const rest = this.peek;
    if (this.isOp("|", rest)) this.fail("pipes (|) are not supported", rest);
    if (rest.kind !== "eof") this.fail(`unexpected ${describe(rest)}`, rest);
    return { category: first.text, where };
  }

  private parseOr(): EqlExpr {
    let left = this.parseAnd();
    while (this.isKeyword("or")) {
      this.next();
      left = { type: "or", left, right: this.parseAnd() };
    }
    return left;
  }

  private parseAnd(): EqlExpr {
    let left = this.parseNot();
    while (this.isKeyword("and")) {
      this.next();
      left = { type: "and", left, right: this.parseNot() };
    }
    return left;
  }

  private parseNot(): EqlExpr {
    if (this.isKeyword("not")) {
      this.next();
      return { type: "not", expr: this.parseNot() };
    }
    return this.parsePrimary();
  }

  private parsePrimary(): EqlExpr {
    const token = this.peek;
    if (this.isOp("(")) {
      this.next();
      const inner = this.parseOr();
      this.expectOp(")", "to close the parenthesis");
      return inner;
    }
    if (token.kind === "ident" && !KEYWORDS.has(token.text.toLowerCase())) {
      if (this.isOp("(", this.peekAt(1))) this.fail(`function call ${token.text}() is not supported`);
      this.next();
      return this.parseCondition(token.text);
    }
    if (token.kind === "eof") this.fail("unexpected end of query");
    if (token.kind === "string" || token.kind === "number" || this.isLiteralKeyword(token)) {
      this.fail(`a condition must start with a field name, found ${describe(token)}`);
    }
    this.fail(`unexpected ${describe(token)}`);
  }

  private isLiteralKeyword(token: Token): boolean {
    return this.isKeyword("true", token) || this.isKeyword("false", token) || this.isKeyword("null", token);
  }

  /** Parses the operator and right-hand side after a field name. */
  private parseCondition(field: string): EqlExpr {
    const opToken = this.peek;
    if (opToken.kind === "op") {
      switch (opToken.text) {
        case "==":
        case "!=":
        case "<":
        case "<=":
        case ">":
        case ">=": {
          this.next();
          return { type: "compare", op: opToken.text, field, value: this.parseLiteral() };
        }
        case ":": {
          this.next();
          const patterns = this.parseStringOrList(":");
          return { type: "wildcard", field, patterns, caseInsensitive: true };
        }
        default:
          this.fail(`unknown operator ${JSON.stringify(opToken.text)} after ${field}`);
      }
    }
    if (opToken.kind === "ident") {
      const word = opToken.text.toLowerCase();
      if (word === "not" && this.isKeyword("in", this.peekAt(1))) {
        this.next();
        this.next();
        const caseInsensitive = this.takeTilde();
        return { type: "in", field, values: this.parseLiteralList("not in"), caseInsensitive, negated: true };
      }
      if (word === "in") {
        this.next();
        const caseInsensitive = this.takeTilde();
        return { type: "in", field, values: this.parseLiteralList("in"), caseInsensitive, negated: false };
      }
      if (word === "like" || word === "regex") {
        this.next();
        const caseInsensitive = this.takeTilde();
        const patterns = this.parseStringOrList(word);
        return word === "like"
          ? { type: "wildcard", field, patterns, caseInsensitive }
          : { type: "regex", field, patterns, caseInsensitive, line: opToken.line, column: opToken.column };
      }
      if (["and", "or"].includes(word) || opToken.kind !== "ident") {
        this.fail(`field ${field} needs an operator (bare fields are not supported)`, opToken);
      }
      this.fail(`unknown operator ${JSON.stringify(opToken.text)} after ${field}`);
    }
    if (opToken.kind === "eof" || this.isOp(")", opToken)) {
      this.fail(`field ${field} needs an operator (bare fields are not supported)`, opToken);
    }
    this.fail(`unknown operator ${describe(opToken)} after ${field}`);
  }

  /** `~` right after in / like / regex (no space) makes the operator case-insensitive. */
  private takeTilde(): boolean {
    const prev = this.tokens[this.index - 1]!;
    const tilde = this.peek;
    if (this.isOp("~", tilde) && tilde.line === prev.line && tilde.column === prev.column + prev.text.length) {
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
    if (token.kind === "ident" && this.isOp("(", this.peekAt(1))) this.fail(`function call ${token.text}() is not supported`);
    if (token.kind === "ident" && !KEYWORDS.has(token.text.toLowerCase())) {
      this.fail(`comparing field to field (${token.text}) is not supported`);
    }
    this.fail(`expected a value, found ${describe(token)}`);
  }

  private parseLiteralList(op: string): Literal[] {
    this.expectOp("(", `after ${op}`);
    const values: Literal[] = [this.parseLiteral()];
    while (this.isOp(",")) {
      this.next();
      values.push(this.parseLiteral());
    }
    this.expectOp(")", `to close the ${op} list`);
    return values;
  }

  private parseString(op: string): string {
    const token = this.peek;
    if (token.kind !== "string") {
      if (token.kind === "ident" && this.isOp("(", this.peekAt(1))) this.fail(`function call ${token.text}() is not supported`);
      this.fail(`${op} needs a string pattern, found ${describe(token)}`);
    }
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

/** Parses `<category> where <expr>`; throws `EqlError` for anything outside the subset. */
export function parseEql(query: string): EqlQuery {
  return new Parser(lex(query)).parseQuery();
}
