/**
 * Splits EQL text into tokens: identifiers (dotted field paths, `?`-marked optional ones),
 * strings ("…", '…', """…""" with their escapes decoded), numbers and operators; comments and
 * white space are dropped. A token keeps its 1-based line and column for error messages.
 */
import { EqlError } from "./error.js";

export type TokenKind = "ident" | "string" | "number" | "op" | "eof";
export interface Token {
  kind: TokenKind;
  /** Identifier text, operator text, or the decoded string. */
  text: string;
  num?: number;
  /** An identifier written `?name`: an optional field. */
  optional?: boolean;
  line: number;
  column: number;
}

const IDENTIFIER = /^[A-Za-z_@][A-Za-z0-9_@]*(\.[A-Za-z_@][A-Za-z0-9_@]*)*/;
const OPERATORS = ["==", "!=", "<=", ">=", "<", ">", ":", "(", ")", ",", "|", "[", "]", "=", "~"] as const;

export function lex(source: string): Token[] {
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
            const codePoint = Number.parseInt(hex, 16);
            if (codePoint > 0x10ffff) throw new EqlError("\\u{…} escape beyond U+10FFFF in string", line, k - lineStart + 1);
            out += String.fromCodePoint(codePoint);
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
    // `?field` marks an optional field: in conditions it means what a missing field always
    // means here, and as a join key it lets a missing value join as null (parser.ts).
    const optional = ch === "?" && /[A-Za-z_@]/.test(source[i + 1] ?? "");
    const identMatch = IDENTIFIER.exec(source.slice(optional ? i + 1 : i, i + 513));
    if (identMatch) {
      tokens.push({ kind: "ident", text: identMatch[0], ...start, ...(optional ? { optional } : {}) });
      i += identMatch[0].length + (optional ? 1 : 0);
      continue;
    }
    if (ch === "`") throw new EqlError("escaped field names (`…`) are not supported", start.line, start.column);
    if (ch === "?" && (source[i + 1] === '"' || source[i + 1] === "'")) {
      throw new EqlError("raw strings (?\"…\") are not supported", start.line, start.column);
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
