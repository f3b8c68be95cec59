/**
 * Whole-value wildcard matching for `:` and like (docs/design.md §4), in time linear in the value:
 * the value is attacker-chosen (argv, up to the kernel's 8 KiB per element), and a `*` → `.*`
 * RegExp took 81 s on `*a*a*b` against 8,190 `a`s.
 *
 * The pattern is split at `*`; the first piece must be a prefix, the last a suffix, and each
 * middle piece is found at its leftmost place after the previous one. Leftmost is always safe
 * for `*`-separated pieces, so there is no backtracking: O(value × pattern) at worst.
 */
import { foldCase } from "./case-fold.js";

export type StringMatcher = (value: string) => boolean;

/** `*` any run (including `/` and newlines), `?` exactly one character; whole value. */
export function compileWildcard(pattern: string, caseInsensitive: boolean): StringMatcher {
  const source = caseInsensitive ? foldCase(pattern) : pattern;
  const pieces = source.split("*");
  if (pieces.length === 1) {
    const only = pieces[0]!;
    if (!only.includes("?")) return caseInsensitive ? (v) => foldCase(v) === only : (v) => v === only;
    return (raw) => {
      const v = caseInsensitive ? foldCase(raw) : raw;
      return matchPieceAt(v, 0, only) === v.length;
    };
  }
  const first = pieces[0]!;
  const last = pieces[pieces.length - 1]!;
  const middle = pieces.slice(1, -1).filter((piece) => piece !== "");
  return (raw) => {
    const v = caseInsensitive ? foldCase(raw) : raw;
    const afterFirst = matchPieceAt(v, 0, first);
    if (afterFirst < 0) return false;
    let at = afterFirst;
    for (const piece of middle) {
      const end = findPiece(v, at, piece);
      if (end < 0) return false;
      at = end;
    }
    return endsWithPiece(v, at, last);
  };
}

/** Length in UTF-16 units of the code point at `at`. */
function unitsAt(v: string, at: number): number {
  const c = v.charCodeAt(at);
  if (c >= 0xd800 && c <= 0xdbff && at + 1 < v.length) {
    const d = v.charCodeAt(at + 1);
    if (d >= 0xdc00 && d <= 0xdfff) return 2;
  }
  return 1;
}

/** Where `piece` (literal but for `?`) ends when it starts at `at`, or -1. */
function matchPieceAt(v: string, at: number, piece: string): number {
  let i = at;
  for (let k = 0; k < piece.length; k++) {
    if (i >= v.length) return -1;
    const p = piece.charCodeAt(k);
    if (p === 63 /* ? */) {
      i += unitsAt(v, i);
      continue;
    }
    if (v.charCodeAt(i) !== p) return -1;
    i++;
  }
  return i;
}

/** The end of the leftmost occurrence of `piece` at or after `from`, or -1. */
function findPiece(v: string, from: number, piece: string): number {
  if (!piece.includes("?")) {
    const found = v.indexOf(piece, from);
    return found < 0 ? -1 : found + piece.length;
  }
  for (let start = from; start < v.length; start += unitsAt(v, start)) {
    const end = matchPieceAt(v, start, piece);
    if (end >= 0) return end;
  }
  return -1;
}

/** Whether `piece` matches a suffix of `v` that starts at or after `from`. */
function endsWithPiece(v: string, from: number, piece: string): boolean {
  if (!piece.includes("?")) return v.length - piece.length >= from && v.endsWith(piece);
  // `?` is one code point, which may be two units: try each code-point boundary from the
  // shortest possible start; at most piece.length of them can be right.
  for (let start = from; start <= v.length; start += start < v.length ? unitsAt(v, start) : 1) {
    if (matchPieceAt(v, start, piece) === v.length) return true;
    if (start === v.length) break;
  }
  return false;
}
