/**
 * Whole-value matchers for `:` / like (wildcards) and regex, in time linear in the value
 * (design.md §4). The value is attacker-chosen (argv, up to the kernel's 8 KiB per element),
 * so neither may backtrack: a `*` → `.*` RegExp took 81 s on `*a*a*b` against 8,190 `a`s.
 *
 * - Wildcards: the pattern is split at `*`; the first piece must be a prefix, the last a
 *   suffix, and each middle piece is found at its leftmost place after the previous one.
 *   Leftmost is always safe for `*`-separated pieces, so there is no backtracking: the cost
 *   is O(value × pattern) at worst, linear in the value.
 * - Regexes: Lucene's syntax as Elasticsearch runs it (no backreferences, no lookaround),
 *   compiled to an NFA and run breadth-first (Thompson), O(value × NFA size). The NFA is
 *   capped in size so that a pattern cannot make each character arbitrarily expensive.
 */import { EXIT_BAD_INPUT, SockeyeError } from "../errors.js";


export type StringMatcher = (value: string) => boolean;

/** `*` any run (including `/` and newlines), `?` exactly one character; whole value. */
export function compileWildcard(pattern: string, caseInsensitive: boolean): StringMatcher {
  const source = caseInsensitive ? pattern.toLowerCase() : pattern;
  const pieces = source.split("*");
  if (pieces.length === 1) {
    const only = pieces[0]!;
    if (!only.includes("?")) return caseInsensitive ? (v) => v.toLowerCase() === only : (v) => v === only;
    return (v) => matchPieceAt(caseInsensitive ? v.toLowerCase() : v, 0, only) === v.length;
  }
  const first = pieces[0]!;
  const last = pieces[pieces.length - 1]!;
  const middle = pieces.slice(1, -1).filter((piece) => piece !== "");
  return (raw) => {
    const v = caseInsensitive ? raw.toLowerCase() : raw;
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

/** A regex outside the supported syntax, or too large. `index` is into the pattern. */
export class RegexSyntaxError extends SockeyeError {
  constructor(
    message: string,
    readonly index: number,
  ) {
    super(message, "SOCKEYE_EQL_REGEX", EXIT_BAD_INPUT);
  }
}

/** NFA states past which a pattern is refused (Elasticsearch's default limit is 10,000 too). */
export const MAX_REGEX_STATES = 10_000;
/** Group nesting past which a pattern is refused: the parser recurses per group. */
const MAX_REGEX_DEPTH = 100;

type CharTest = (cp: number) => boolean;

type RegexNode =
  | { t: "char"; test: CharTest }
  | { t: "seq"; items: RegexNode[] }
  | { t: "alt"; items: RegexNode[] }
  | { t: "repeat"; node: RegexNode; min: number; max: number /* Infinity: unbounded */ };

/** NFA instruction: match one code point, fork, or accept. */
type Inst = { op: "char"; test: CharTest; next: number } | { op: "split"; a: number; b: number } | { op: "match" };

const DIGIT: CharTest = (c) => c >= 48 && c <= 57;
const WORD: CharTest = (c) => DIGIT(c) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
const SPACE: CharTest = (c) => c === 32 || (c >= 9 && c <= 13);
const ANY: CharTest = () => true;

class RegexParser {
  private i = 0;
  private readonly cps: number[];
  constructor(pattern: string) {
    this.cps = Array.from(pattern, (ch) => ch.codePointAt(0)!);
  }
  private fail(message: string): never {
    throw new RegexSyntaxError(message, this.i);
  }
  private peek(): number | undefined {
    return this.cps[this.i];
  }

  parse(): RegexNode {
    // Anchors at the ends are what whole-value matching does anyway.
    if (this.peek() === 94 /* ^ */) this.i++;
    const node = this.alternation(0);
    if (this.i < this.cps.length) this.fail(`unexpected ${String.fromCodePoint(this.cps[this.i]!)}`);
    return node;
  }

  private alternation(depth: number): RegexNode {
    if (depth > MAX_REGEX_DEPTH) this.fail(`groups nested deeper than ${MAX_REGEX_DEPTH}`);
    const items = [this.sequence(depth)];
    while (this.peek() === 124 /* | */) {
      this.i++;
      items.push(this.sequence(depth));
    }
    return items.length === 1 ? items[0]! : { t: "alt", items };
  }

  private sequence(depth: number): RegexNode {
    const items: RegexNode[] = [];
    for (;;) {
      const c = this.peek();
      if (c === undefined || c === 124 || c === 41 /* ) */) break;
      if (c === 36 /* $ */ && this.i === this.cps.length - 1) {
        this.i++;
        break;
      }
      items.push(this.quantified(this.atom(depth)));
    }
    return items.length === 1 ? items[0]! : { t: "seq", items };
  }

  private quantified(node: RegexNode): RegexNode {
    for (;;) {
      const c = this.peek();
      if (c === 42 /* * */) node = { t: "repeat", node, min: 0, max: Infinity };
      else if (c === 43 /* + */) node = { t: "repeat", node, min: 1, max: Infinity };
      else if (c === 63 /* ? */) node = { t: "repeat", node, min: 0, max: 1 };
      else if (c === 123 /* { */) {
        this.i++;
        const min = this.number();
        let max = min;
        if (this.peek() === 44 /* , */) {
          this.i++;
          max = this.peek() === 125 ? Infinity : this.number();
        }
        if (this.peek() !== 125) this.fail("expected } to close a repetition");
        if (max < min) this.fail("repetition {n,m} with m < n");
        node = { t: "repeat", node, min, max };
      } else return node;
      this.i++;
    }
  }

  private number(): number {
    let n = 0;
    const start = this.i;
    while (this.peek() !== undefined && DIGIT(this.peek()!)) {
      n = n * 10 + (this.peek()! - 48);
      if (n > MAX_REGEX_STATES) this.fail("repetition count too large");
      this.i++;
    }
    if (this.i === start) this.fail("expected a number in a repetition");
    return n;
  }

  private atom(depth: number): RegexNode {
    const c = this.peek()!;
    this.i++;
    switch (c) {
      case 40 /* ( */: {
        if (this.peek() === 63 /* ? */) this.fail("(?…) groups are not supported");
        const inner = this.alternation(depth + 1);
        if (this.peek() !== 41) this.fail("expected ) to close a group");
        this.i++;
        return inner;
      }
      case 91 /* [ */:
        return { t: "char", test: this.charClass() };
      case 46 /* . */:
        return { t: "char", test: ANY };
      case 92 /* \ */:
        return { t: "char", test: this.escape() };
      case 42:
      case 43:
      case 63:
      case 123:
        this.i--;
        return this.fail(`nothing to repeat before ${String.fromCodePoint(c)}`);
      default:
        return { t: "char", test: (x) => x === c };
    }
  }

  private escape(): CharTest {
    const e = this.peek();
    if (e === undefined) this.fail("pattern ends with \\");
    this.i++;
    switch (e) {
      case 100 /* d */: return DIGIT;
      case 68 /* D */: return (x) => !DIGIT(x);
      case 119 /* w */: return WORD;
      case 87 /* W */: return (x) => !WORD(x);
      case 115 /* s */: return SPACE;
      case 83 /* S */: return (x) => !SPACE(x);
      case 110 /* n */: return (x) => x === 10;
      case 116 /* t */: return (x) => x === 9;
      case 114 /* r */: return (x) => x === 13;
      default:
        if (WORD(e) && !DIGIT(e)) this.fail(`unsupported escape \\${String.fromCodePoint(e)}`);
        if (DIGIT(e)) this.fail("backreferences are not supported");
        return (x) => x === e;
    }
  }

  private charClass(): CharTest {
    const negated = this.peek() === 94;
    if (negated) this.i++;
    const tests: CharTest[] = [];
    let first = true;
    for (;;) {
      const c = this.peek();
      if (c === undefined) this.fail("unterminated [ class");
      if (c === 93 /* ] */ && !first) {
        this.i++;
        break;
      }
      first = false;
      this.i++;
      let lo: number | CharTest = c;
      if (c === 92) lo = this.classEscape();
      if (typeof lo === "number" && this.peek() === 45 /* - */ && this.cps[this.i + 1] !== undefined && this.cps[this.i + 1] !== 93) {
        this.i++;
        let hi: number | CharTest = this.cps[this.i]!;
        this.i++;
        if (hi === 92) hi = this.classEscape();
        if (typeof hi !== "number" || hi < lo) this.fail("bad range in [ class");
        const low = lo;
        tests.push((x) => x >= low && x <= hi);
      } else if (typeof lo === "number") {
        const one = lo;
        tests.push((x) => x === one);
      } else {
        tests.push(lo);
      }
    }
    const inClass: CharTest = (x) => tests.some((test) => test(x));
    return negated ? (x) => !inClass(x) : inClass;
  }

  private classEscape(): number | CharTest {
    const e = this.peek();
    if (e === undefined) this.fail("unterminated [ class");
    if (e === 100 || e === 68 || e === 119 || e === 87 || e === 115 || e === 83 || e === 110 || e === 116 || e === 114) return this.escape();
    this.i++;
    return e;
  }
}

/** Lays `node` out as instructions ending in a jump to `next`; returns the entry index. */
function emit(node: RegexNode, next: number, prog: Inst[]): number {
  if (prog.length > MAX_REGEX_STATES) throw new RegexSyntaxError(`pattern needs more than ${MAX_REGEX_STATES} NFA states`, 0);
  switch (node.t) {
    case "char":
      prog.push({ op: "char", test: node.test, next });
      return prog.length - 1;
    case "seq": {
      let entry = next;
      for (let k = node.items.length - 1; k >= 0; k--) entry = emit(node.items[k]!, entry, prog);
      return entry;
    }
    case "alt": {
      let entry = emit(node.items[node.items.length - 1]!, next, prog);
      for (let k = node.items.length - 2; k >= 0; k--) {
        const a = emit(node.items[k]!, next, prog);
        prog.push({ op: "split", a, b: entry });
        entry = prog.length - 1;
      }
      return entry;
    }
    case "repeat": {
      let entry = next;
      if (node.max === Infinity) {
        // A loop: split → body → back to the split, or on to `next`.
        const split: Inst = { op: "split", a: -1, b: next };
        prog.push(split);
        const splitAt = prog.length - 1;
        split.a = emit(node.node, splitAt, prog);
        entry = splitAt;
      } else {
        for (let k = node.max; k > node.min; k--) {
          const body = emit(node.node, entry, prog);
          prog.push({ op: "split", a: body, b: next });
          entry = prog.length - 1;
        }
      }
      for (let k = 0; k < node.min; k++) entry = emit(node.node, entry, prog);
      return entry;
    }
  }
}

/** Compiles a Lucene-syntax regex for whole-value matching; throws RegexSyntaxError. */
export function compileRegex(pattern: string, caseInsensitive: boolean): StringMatcher {
  const tree = new RegexParser(pattern).parse();
  const prog: Inst[] = [{ op: "match" }];
  const start = emit(tree, 0, prog);
  if (caseInsensitive) {
    for (const inst of prog) {
      if (inst.op !== "char") continue;
      const test = inst.test;
      inst.test = (cp) => test(cp) || test(lowerCp(cp)) || test(upperCp(cp));
    }
  }
  const size = prog.length;
  return (value) => {
    // Two state lists swapped per character; a generation number per state keeps each
    // state at most once in a list, which is what bounds the work per character.
    let current = new Int32Array(size);
    let nextList = new Int32Array(size);
    const seen = new Uint32Array(size);
    let generation = 1;
    let currentCount = 0;
    const stack: number[] = [];
    const add = (list: Int32Array, count: number, pc: number): number => {
      stack.push(pc);
      while (stack.length > 0) {
        const at = stack.pop()!;
        if (seen[at] === generation) continue;
        seen[at] = generation;
        const inst = prog[at]!;
        if (inst.op === "split") {
          stack.push(inst.b, inst.a);
        } else {
          list[count++] = at;
        }
      }
      return count;
    };
    currentCount = add(current, 0, start);
    for (let i = 0; i < value.length && currentCount > 0; ) {
      const cp = value.codePointAt(i)!;
      i += cp > 0xffff ? 2 : 1;
      generation++;
      let nextCount = 0;
      for (let k = 0; k < currentCount; k++) {
        const inst = prog[current[k]!]!;
        if (inst.op === "char" && inst.test(cp)) nextCount = add(nextList, nextCount, inst.next);
      }
      [current, nextList] = [nextList, current];
      currentCount = nextCount;
    }
    for (let k = 0; k < currentCount; k++) if (prog[current[k]!]!.op === "match") return true;
    return false;
  };
}

function lowerCp(cp: number): number {
  return String.fromCodePoint(cp).toLowerCase().codePointAt(0)!;
}
function upperCp(cp: number): number {
  return String.fromCodePoint(cp).toUpperCase().codePointAt(0)!;
}
