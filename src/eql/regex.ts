/**
 * Whole-value regex matching for `regex` / `regex~` with Lucene's syntax as Elasticsearch's
 * regexp query runs it (flags ALL): no backreferences or lookaround, and the optional
 * operators `@` (any string), `#` (no string), `<n-m>` (a decimal number in a range), `&`
 * (both sides match), `~` (the operand does not match) and `"…"` (literal text).
 *
 * The value is attacker-chosen, so matching never backtracks: the pattern becomes an NFA
 * (Thompson), and a value is run through a DFA built lazily from it, one state per set of NFA
 * states met, cached across values (a cache miss costs O(NFA size) for one character; the
 * cache is dropped when it grows past MAX_DFA_STATES, so time stays linear in the value and
 * memory bounded). `~` and `&` need their operands' DFAs up front, built by subset
 * construction within MAX_REGEX_STATES.
 */
import { EXIT_BAD_INPUT, SockeyeError } from "../errors.js";
import { caseVariants } from "./case-fold.js";
import type { StringMatcher } from "./wildcard.js";

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
/**
 * Cached DFA states per pattern before the cache starts over: each holds a 128-entry ASCII
 * table, so an attacker's values can make at most ~0.5 MB of them per pattern.
 */
const MAX_DFA_STATES = 512;
/** Non-ASCII transitions cached per DFA state: a value's code points are the attacker's choice. */
const MAX_CACHED_OTHER_CODE_POINTS = 256;
const MAX_CODE_POINT = 0x10ffff;
/** Ranges up to this size get their case variants added under `regex~`; wider ones (`.`, `[^a]`) hold nearly everything already. */
const MAX_CASE_EXPANDED_RANGE = 4096;

/** Sorted, disjoint, inclusive code point ranges, flat: [lo0, hi0, lo1, hi1, …]. */
type CharSet = readonly number[];

const ANY: CharSet = [0, MAX_CODE_POINT];
const DIGITS: CharSet = [48, 57];
const WORD: CharSet = [48, 57, 65, 90, 95, 95, 97, 122];
const SPACE: CharSet = [9, 13, 32, 32];

function normalize(ranges: number[]): CharSet {
  const pairs: [number, number][] = [];
  for (let i = 0; i < ranges.length; i += 2) pairs.push([ranges[i]!, ranges[i + 1]!]);
  pairs.sort((a, b) => a[0] - b[0]);
  const out: number[] = [];
  for (const [lo, hi] of pairs) {
    const last = out.length - 1;
    if (last > 0 && lo <= out[last]! + 1) out[last] = Math.max(out[last]!, hi);
    else out.push(lo, hi);
  }
  return out;
}

function negate(set: CharSet): CharSet {
  const out: number[] = [];
  let next = 0;
  for (let i = 0; i < set.length; i += 2) {
    if (set[i]! > next) out.push(next, set[i]! - 1);
    next = set[i + 1]! + 1;
  }
  if (next <= MAX_CODE_POINT) out.push(next, MAX_CODE_POINT);
  return out;
}

function contains(set: CharSet, cp: number): boolean {
  for (let i = 0; i < set.length; i += 2) {
    if (cp < set[i]!) return false;
    if (cp <= set[i + 1]!) return true;
  }
  return false;
}

function withCaseVariants(set: CharSet): CharSet {
  const extra: number[] = [];
  for (let i = 0; i < set.length; i += 2) {
    if (set[i + 1]! - set[i]! >= MAX_CASE_EXPANDED_RANGE) continue;
    for (let cp = set[i]!; cp <= set[i + 1]!; cp++) for (const variant of caseVariants(cp)) if (variant !== cp) extra.push(variant, variant);
  }
  return extra.length === 0 ? set : normalize([...set, ...extra]);
}

type RegexNode =
  | { t: "chars"; set: CharSet }
  | { t: "seq"; items: RegexNode[] }
  | { t: "alt"; items: RegexNode[] }
  | { t: "repeat"; node: RegexNode; min: number; max: number /* Infinity: unbounded */ }
  | { t: "and"; items: RegexNode[] }
  | { t: "not"; node: RegexNode }
  | { t: "none" };

const EMPTY_STRING: RegexNode = { t: "seq", items: [] };

class RegexParser {
  private i = 0;
  private readonly cps: number[];
  constructor(
    pattern: string,
    private readonly caseInsensitive: boolean,
  ) {
    this.cps = Array.from(pattern, (ch) => ch.codePointAt(0)!);
  }
  private fail(message: string): never {
    throw new RegexSyntaxError(message, this.i);
  }
  private peek(): number | undefined {
    return this.cps[this.i];
  }
  private chars(set: CharSet): RegexNode {
    return { t: "chars", set: this.caseInsensitive ? withCaseVariants(set) : set };
  }

  parse(): RegexNode {
    // Anchors at the ends are what whole-value matching does anyway.
    if (this.peek() === 94 /* ^ */) this.i++;
    const node = this.union(0);
    if (this.i < this.cps.length) this.fail(`unexpected ${String.fromCodePoint(this.cps[this.i]!)}`);
    return node;
  }

  /** union ::= intersection ( `|` intersection )* */
  private union(depth: number): RegexNode {
    if (depth > MAX_REGEX_DEPTH) this.fail(`groups nested deeper than ${MAX_REGEX_DEPTH}`);
    const items = [this.intersection(depth)];
    while (this.peek() === 124 /* | */) {
      this.i++;
      items.push(this.intersection(depth));
    }
    return items.length === 1 ? items[0]! : { t: "alt", items };
  }

  /** intersection ::= sequence ( `&` sequence )* */
  private intersection(depth: number): RegexNode {
    const items = [this.sequence(depth)];
    while (this.peek() === 38 /* & */) {
      this.i++;
      items.push(this.sequence(depth));
    }
    return items.length === 1 ? items[0]! : { t: "and", items };
  }

  private sequence(depth: number): RegexNode {
    const items: RegexNode[] = [];
    for (;;) {
      const c = this.peek();
      if (c === undefined || c === 124 || c === 38 || c === 41 /* ) */) break;
      if (c === 36 /* $ */ && this.i === this.cps.length - 1) {
        this.i++;
        break;
      }
      items.push(this.quantified(this.complement(depth)));
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
        const min = this.number(MAX_REGEX_STATES, "repetition count too large");
        let max = min;
        if (this.peek() === 44 /* , */) {
          this.i++;
          max = this.peek() === 125 ? Infinity : this.number(MAX_REGEX_STATES, "repetition count too large");
        }
        if (this.peek() !== 125) this.fail("expected } to close a repetition");
        if (max < min) this.fail("repetition {n,m} with m < n");
        node = { t: "repeat", node, min, max };
      } else return node;
      this.i++;
    }
  }

  private number(limit: number, tooLarge: string): number {
    let n = 0;
    const start = this.i;
    while (this.peek() !== undefined && contains(DIGITS, this.peek()!)) {
      n = n * 10 + (this.peek()! - 48);
      if (n > limit) this.fail(tooLarge);
      this.i++;
    }
    if (this.i === start) this.fail("expected a number");
    return n;
  }

  /** complement ::= `~` complement | atom (Lucene binds `~` tighter than repetition). */
  private complement(depth: number): RegexNode {
    if (this.peek() !== 126 /* ~ */) return this.atom(depth);
    this.i++;
    if (depth > MAX_REGEX_DEPTH) this.fail(`~ nested deeper than ${MAX_REGEX_DEPTH}`);
    return { t: "not", node: this.complement(depth + 1) };
  }

  private atom(depth: number): RegexNode {
    const c = this.peek()!;
    this.i++;
    switch (c) {
      case 40 /* ( */: {
        if (this.peek() === 63 /* ? */) this.fail("(?…) groups are not supported");
        if (this.peek() === 41) {
          this.i++;
          return EMPTY_STRING;
        }
        const inner = this.union(depth + 1);
        if (this.peek() !== 41) this.fail("expected ) to close a group");
        this.i++;
        return inner;
      }
      case 91 /* [ */:
        return this.chars(this.charClass());
      case 46 /* . */:
        return { t: "chars", set: ANY };
      case 64 /* @ */:
        return { t: "repeat", node: { t: "chars", set: ANY }, min: 0, max: Infinity };
      case 35 /* # */:
        return { t: "none" };
      case 60 /* < */:
        return this.interval();
      case 34 /* " */: {
        const items: RegexNode[] = [];
        while (this.peek() !== 34) {
          if (this.peek() === undefined) this.fail('unterminated "…" string');
          items.push(this.chars([this.peek()!, this.peek()!]));
          this.i++;
        }
        this.i++;
        return { t: "seq", items };
      }
      case 92 /* \ */:
        return this.chars(this.escape());
      case 42:
      case 43:
      case 63:
      case 123:
        this.i--;
        return this.fail(`nothing to repeat before ${String.fromCodePoint(c)}`);
      default:
        return this.chars([c, c]);
    }
  }

  /** `<n-m>`: a decimal number from n to m; as in Lucene, zero-padded to one width when n and m have the same number of digits, else with any number of leading zeros. */
  private interval(): RegexNode {
    const start = this.i;
    if (!contains(DIGITS, this.peek() ?? -1)) this.fail("expected <n-m>: named automata (<name>) are not supported");
    const min = this.number(Number.MAX_SAFE_INTEGER, "number in <n-m> too large");
    const minDigits = this.i - start;
    if (this.peek() !== 45 /* - */) this.fail("expected - in <n-m>");
    this.i++;
    const maxStart = this.i;
    const max = this.number(Number.MAX_SAFE_INTEGER, "number in <n-m> too large");
    const maxDigits = this.i - maxStart;
    if (this.peek() !== 62 /* > */) this.fail("expected > to close <n-m>");
    this.i++;
    const [lo, hi] = min <= max ? [min, max] : [max, min];
    if (minDigits === maxDigits) return fixedWidthRange(String(lo).padStart(minDigits, "0"), String(hi).padStart(minDigits, "0"));
    const zeros: RegexNode = { t: "repeat", node: { t: "chars", set: [48, 48] }, min: 0, max: Infinity };
    const byLength: RegexNode[] = [];
    for (let digits = String(lo).length; digits <= String(hi).length; digits++) {
      const from = Math.max(lo, digits === 1 ? 0 : 10 ** (digits - 1));
      const to = Math.min(hi, 10 ** digits - 1);
      // Without padding, a number has no leading zero of its own: 0* takes them all.
      if (from <= to) byLength.push(fixedWidthRange(String(from), String(to)));
    }
    return { t: "seq", items: [zeros, { t: "alt", items: byLength }] };
  }

  private escape(): CharSet {
    const e = this.peek();
    if (e === undefined) this.fail("pattern ends with \\");
    this.i++;
    switch (e) {
      case 100 /* d */: return DIGITS;
      case 68 /* D */: return negate(DIGITS);
      case 119 /* w */: return WORD;
      case 87 /* W */: return negate(WORD);
      case 115 /* s */: return SPACE;
      case 83 /* S */: return negate(SPACE);
      case 110 /* n */: return [10, 10];
      case 116 /* t */: return [9, 9];
      case 114 /* r */: return [13, 13];
      default:
        if (contains(WORD, e) && !contains(DIGITS, e)) this.fail(`unsupported escape \\${String.fromCodePoint(e)}`);
        if (contains(DIGITS, e)) this.fail("backreferences are not supported");
        return [e, e];
    }
  }

  private charClass(): CharSet {
    const negated = this.peek() === 94;
    if (negated) this.i++;
    const ranges: number[] = [];
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
      let lo: number | CharSet = c;
      if (c === 92) lo = this.classEscape();
      if (typeof lo === "number" && this.peek() === 45 /* - */ && this.cps[this.i + 1] !== undefined && this.cps[this.i + 1] !== 93) {
        this.i++;
        let hi: number | CharSet = this.cps[this.i]!;
        this.i++;
        if (hi === 92) hi = this.classEscape();
        if (typeof hi !== "number" || hi < lo) this.fail("bad range in [ class");
        ranges.push(lo, hi);
      } else if (typeof lo === "number") {
        ranges.push(lo, lo);
      } else {
        ranges.push(...lo);
      }
    }
    const set = normalize(ranges);
    return negated ? negate(set) : set;
  }

  private classEscape(): number | CharSet {
    const e = this.peek();
    if (e === undefined) this.fail("unterminated [ class");
    if (e === 100 || e === 68 || e === 119 || e === 87 || e === 115 || e === 83 || e === 110 || e === 116 || e === 114) return this.escape();
    this.i++;
    return e;
  }
}

/** Digit strings of one width from `lo` to `hi` (both that wide), by their first digit. */
function fixedWidthRange(lo: string, hi: string): RegexNode {
  if (lo.length === 0) return EMPTY_STRING;
  const a = lo.charCodeAt(0);
  const b = hi.charCodeAt(0);
  const rest = lo.length - 1;
  if (a === b) return { t: "seq", items: [{ t: "chars", set: [a, a] }, fixedWidthRange(lo.slice(1), hi.slice(1))] };
  const items: RegexNode[] = [{ t: "seq", items: [{ t: "chars", set: [a, a] }, fixedWidthRange(lo.slice(1), "9".repeat(rest))] }];
  if (b - a > 1) items.push({ t: "seq", items: [{ t: "chars", set: [a + 1, b - 1] }, { t: "repeat", node: { t: "chars", set: DIGITS }, min: rest, max: rest }] });
  items.push({ t: "seq", items: [{ t: "chars", set: [b, b] }, fixedWidthRange("0".repeat(rest), hi.slice(1))] });
  return { t: "alt", items };
}

interface NfaState {
  edges: { set: CharSet; to: number }[];
  eps: number[];
}

/** An NFA: `states[start]` begins, `accept` ends a match. */
interface Nfa {
  states: NfaState[];
  start: number;
  accept: number;
}

class NfaBuilder {
  readonly states: NfaState[] = [];

  state(): number {
    if (this.states.length >= MAX_REGEX_STATES) throw new RegexSyntaxError(`pattern needs more than ${MAX_REGEX_STATES} NFA states`, 0);
    this.states.push({ edges: [], eps: [] });
    return this.states.length - 1;
  }

  /** Lays `node` out between two new states; returns [start, end]. */
  build(node: RegexNode): [number, number] {
    switch (node.t) {
      case "chars": {
        const s = this.state();
        const e = this.state();
        this.states[s]!.edges.push({ set: node.set, to: e });
        return [s, e];
      }
      case "none":
        return [this.state(), this.state()];
      case "seq": {
        const s = this.state();
        let end = s;
        for (const item of node.items) {
          const [a, b] = this.build(item);
          this.states[end]!.eps.push(a);
          end = b;
        }
        return [s, end];
      }
      case "alt": {
        const s = this.state();
        const e = this.state();
        for (const item of node.items) {
          const [a, b] = this.build(item);
          this.states[s]!.eps.push(a);
          this.states[b]!.eps.push(e);
        }
        return [s, e];
      }
      case "repeat": {
        const s = this.state();
        let end = s;
        for (let k = 0; k < node.min; k++) {
          const [a, b] = this.build(node.node);
          this.states[end]!.eps.push(a);
          end = b;
        }
        const e = this.state();
        if (node.max === Infinity) {
          const [a, b] = this.build(node.node);
          this.states[end]!.eps.push(a, e);
          this.states[b]!.eps.push(end);
        } else {
          for (let k = node.min; k < node.max; k++) {
            const [a, b] = this.build(node.node);
            this.states[end]!.eps.push(a, e);
            end = b;
          }
        }
        this.states[end]!.eps.push(e);
        return [s, e];
      }
      case "not":
      case "and": {
        const operands = (node.t === "not" ? [node.node] : node.items).map(toNfa);
        const accepts = node.t === "not" ? (done: boolean[]) => !done[0]! : (done: boolean[]) => done.every(Boolean);
        return this.embed(determinize(operands, accepts));
      }
    }
  }

  /** Copies a DFA in as NFA states; its accepting states lead on to the fragment's end. */
  private embed(dfa: Dfa): [number, number] {
    const base = this.states.length;
    for (let k = 0; k < dfa.accepting.length; k++) this.state();
    const e = this.state();
    dfa.accepting.forEach((accepting, k) => {
      const state = this.states[base + k]!;
      for (const { set, to } of dfa.edges[k]!) state.edges.push({ set, to: base + to });
      if (accepting) state.eps.push(e);
    });
    return [base + dfa.start, e];
  }
}

function toNfa(node: RegexNode): Nfa {
  const builder = new NfaBuilder();
  const [start, accept] = builder.build(node);
  return { states: builder.states, start, accept };
}

/** The NFA states reachable from `from` without reading a character, sorted. */
function closure(nfa: Nfa, from: Iterable<number>): number[] {
  const seen = new Set<number>();
  const stack = [...from];
  while (stack.length > 0) {
    const at = stack.pop()!;
    if (seen.has(at)) continue;
    seen.add(at);
    for (const next of nfa.states[at]!.eps) stack.push(next);
  }
  return [...seen].sort((a, b) => a - b);
}

function step(nfa: Nfa, from: readonly number[], cp: number): number[] {
  const next: number[] = [];
  for (const at of from) for (const edge of nfa.states[at]!.edges) if (contains(edge.set, cp)) next.push(edge.to);
  return closure(nfa, next);
}

interface Dfa {
  start: number;
  accepting: boolean[];
  edges: { set: CharSet; to: number }[][];
}

/**
 * Runs `nfas` side by side as one total DFA (subset construction over the code points their
 * edges tell apart); a state accepts when `accepts` says so of which NFAs accept there.
 */
function determinize(nfas: Nfa[], accepts: (done: boolean[]) => boolean): Dfa {
  const bounds = new Set<number>([0]);
  for (const nfa of nfas) {
    for (const state of nfa.states) {
      for (const { set } of state.edges) {
        for (let i = 0; i < set.length; i += 2) {
          bounds.add(set[i]!);
          if (set[i + 1]! < MAX_CODE_POINT) bounds.add(set[i + 1]! + 1);
        }
      }
    }
  }
  const starts = [...bounds].sort((a, b) => a - b);
  const ids = new Map<string, number>();
  const pending: number[][][] = [];
  const dfa: Dfa = { start: 0, accepting: [], edges: [] };
  const idOf = (sets: number[][]): number => {
    const key = sets.map((set) => set.join(",")).join("|");
    let id = ids.get(key);
    if (id === undefined) {
      id = dfa.accepting.length;
      if (id >= MAX_REGEX_STATES) throw new RegexSyntaxError(`pattern needs more than ${MAX_REGEX_STATES} DFA states for ~ or &`, 0);
      ids.set(key, id);
      dfa.accepting.push(accepts(sets.map((set, k) => set.includes(nfas[k]!.accept))));
      dfa.edges.push([]);
      pending.push(sets);
    }
    return id;
  };
  idOf(nfas.map((nfa) => closure(nfa, [nfa.start])));
  for (let id = 0; id < pending.length; id++) {
    const sets = pending[id]!;
    const byTarget = new Map<number, number[]>();
    starts.forEach((lo, k) => {
      const hi = k + 1 < starts.length ? starts[k + 1]! - 1 : MAX_CODE_POINT;
      const to = idOf(sets.map((set, n) => step(nfas[n]!, set, lo)));
      const ranges = byTarget.get(to) ?? [];
      ranges.push(lo, hi);
      byTarget.set(to, ranges);
    });
    for (const [to, ranges] of byTarget) dfa.edges[id]!.push({ set: normalize(ranges), to });
  }
  return dfa;
}

/** One state of the lazily built DFA: the NFA states it stands for and the transitions found so far. */
interface LazyState {
  nfaStates: number[];
  accepting: boolean;
  /** By ASCII code point; undefined until computed. */
  ascii: (LazyState | undefined)[];
  other: Map<number, LazyState>;
}

/** Compiles a Lucene-syntax regex for whole-value matching; throws RegexSyntaxError. */
export function compileRegex(pattern: string, caseInsensitive: boolean): StringMatcher {
  const nfa = toNfa(new RegexParser(pattern, caseInsensitive).parse());
  let cache = new Map<string, LazyState>();
  const stateOf = (nfaStates: number[]): LazyState => {
    const key = nfaStates.join(",");
    let state = cache.get(key);
    if (state === undefined) {
      state = { nfaStates, accepting: nfaStates.includes(nfa.accept), ascii: new Array<LazyState | undefined>(128), other: new Map() };
      cache.set(key, state);
    }
    return state;
  };
  const startStates = closure(nfa, [nfa.start]);
  let start = stateOf(startStates);
  const dead = (state: LazyState) => state.nfaStates.length === 0;
  return (value) => {
    if (cache.size > MAX_DFA_STATES) {
      cache = new Map();
      start = stateOf(startStates);
    }
    let state = start;
    for (let i = 0; i < value.length && !dead(state); ) {
      const cp = value.codePointAt(i)!;
      i += cp > 0xffff ? 2 : 1;
      let next = cp < 128 ? state.ascii[cp] : state.other.get(cp);
      if (next === undefined) {
        next = stateOf(step(nfa, state.nfaStates, cp));
        if (cp < 128) state.ascii[cp] = next;
        else if (state.other.size < MAX_CACHED_OTHER_CODE_POINTS) state.other.set(cp, next);
      }
      state = next;
    }
    return state.accepting;
  };
}

/** Characters with a meaning in Lucene's syntax (flags ALL): a literal run ends at any of them. */
const REGEX_META = new Set([".", "?", "+", "*", "|", "{", "}", "[", "]", "(", ")", '"', "\\", "#", "@", "&", "<", ">", "~"]);

/**
 * The literal text every value `pattern` matches starts with (the match is of the whole
 * value), and whether that text is the whole pattern; undefined when none can be named. Used
 * to index rules by their regexes (analysis.ts): `/var/run/\w+\.pid` needs `/var/run/`.
 * Conservative: a top-level `|` (either branch), or `&` / `~` anywhere, names nothing, and the
 * character a `?`, `*` or `{` repeats is not part of the text.
 */
export function regexLiteralPrefix(source: string): { text: string; whole: boolean } | undefined {
  // A leading ^ is skipped by the parser: whole-value matching is anchored anyway.
  const pattern = source.startsWith("^") ? source.slice(1) : source;
  let depth = 0;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "\\") i++;
    else if (c === "[") {
      // As the parser reads a class: an optional ^, then a ] first in the class is literal.
      i++;
      if (pattern[i] === "^") i++;
      for (let first = true; i < pattern.length && (first || pattern[i] !== "]"); i++, first = false) if (pattern[i] === "\\") i++;
    } else if (c === '"') {
      const close = pattern.indexOf('"', i + 1);
      i = close < 0 ? pattern.length : close;
    } else if (c === "(") depth++;
    else if (c === ")") depth--;
    else if ((c === "|" && depth === 0) || c === "&" || c === "~") return undefined;
  }
  let end = 0;
  while (end < pattern.length && !REGEX_META.has(pattern[end]!)) end++;
  if (end === pattern.length) return end === 0 ? undefined : { text: pattern, whole: true };
  const next = pattern[end];
  if (next === "?" || next === "*" || next === "{") {
    end--;
    // The repeated character may be a surrogate pair.
    if (end > 0 && /[\udc00-\udfff]/.test(pattern[end]!) && /[\ud800-\udbff]/.test(pattern[end - 1]!)) end--;
  }
  return end > 0 ? { text: pattern.slice(0, end), whole: false } : undefined;
}
