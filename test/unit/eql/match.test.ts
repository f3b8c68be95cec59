/**
 * Wildcard and regex matching run in time linear in the value: the value is argv, which an
 * attacker chooses (a `*` → `.*` RegExp takes 81 s on `*a*a*b` against 8,190 `a`s). Every
 * timing bound here is orders of magnitude above the linear cost and orders below the
 * backtracking one.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileEql } from "../../../src/eql/compile.js";
import { caseVariants, foldCodePoint } from "../../../src/eql/case-fold.js";
import { compileRegex, regexLiteralPrefix } from "../../../src/eql/regex.js";
import { compileWildcard } from "../../../src/eql/wildcard.js";

const ARGV_MAX = 8190;

function timed(run: () => boolean): { result: boolean; ms: number } {
  const start = performance.now();
  const result = run();
  return { result, ms: performance.now() - start };
}

describe("wildcards in linear time", () => {
  const hostile: [string, string, boolean][] = [
    ["*a*a*b", "a".repeat(ARGV_MAX), false],
    ["*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", "a".repeat(50), false],
    ["*import*pty*spawn*", `import ${"pty".repeat(2700)}`, false],
    ["*import*pty*spawn*", `import ${"pty".repeat(2700)}.spawn()`, true],
    ["*?a?a?a?a?a?b", "a".repeat(ARGV_MAX), false],
    ["a*a*a*a*a*a*a*a?", "a".repeat(ARGV_MAX) + "b".repeat(10), false],
    ["a*a*a*a*a*a*a*a?", "a".repeat(ARGV_MAX) + "b", true],
  ];
  it.each(hostile.map(([pattern, value, expected]) => [pattern, expected, value] as const))("%s against a hostile value → %s, fast", (pattern, expected, value) => {
    const query = compileEql(`process where process.args : ${JSON.stringify(pattern)}`);
    const { result, ms } = timed(() => query.test({ process: { args: [value] } }));
    expect(result).toBe(expected);
    expect(ms).toBeLessThan(250);
  });

  it("agrees with a backtracking reference on every short value", () => {
    const patterns = ["*", "", "a", "?", "a*", "*a", "*a*", "a*b", "a?b", "*ab*ba*", "ab*ba", "?*?", "*??*", "a*a*a", "*b?a*", "ÿ?", "?b", "*ß*"];
    const alphabet = ["a", "b", "A", "ÿ", "😀", "\n"];
    const values: string[] = [""];
    for (let length = 1; length <= 4; length++) {
      for (const prefix of values.filter((v) => [...v].length === length - 1)) for (const c of alphabet) values.push(prefix + c);
    }
    for (const pattern of patterns) {
      const escaped = [...pattern].map((c) => (c === "*" ? ".*" : c === "?" ? "." : c.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))).join("");
      for (const caseInsensitive of [false, true]) {
        const reference = new RegExp(`^(?:${escaped})$`, caseInsensitive ? "isu" : "su");
        const match = compileWildcard(pattern, caseInsensitive);
        for (const value of values) expect(match(value), `${pattern} ${caseInsensitive} ${JSON.stringify(value)}`).toBe(reference.test(value));
      }
    }
  });
});

describe("regex in linear time (Lucene syntax, Thompson NFA)", () => {
  const hostile: [string, string][] = [
    ["(a+)+b", "a".repeat(ARGV_MAX)],
    ["(a|a)*b", "a".repeat(ARGV_MAX)],
    ["(.*a){20}b", "a".repeat(ARGV_MAX)],
    // Elastic's own Linux rules: a host name then a path, against a long dotted name with no '/'.
    [".*[A-Za-z0-9][A-Za-z0-9\\-]*(\\.[A-Za-z0-9][A-Za-z0-9\\-]*)+(:[0-9]{1,5})?\\/[^ ]+.*", "a.".repeat(ARGV_MAX / 2)],
  ];
  it.each(hostile.map(([pattern, value]) => [pattern, value.length, value] as const))("%s against a hostile value of %d characters", (pattern, _length, value) => {
    const query = compileEql(`process where process.args regex """${pattern}"""`);
    const { result, ms } = timed(() => query.test({ process: { args: [value] } }));
    expect(result).toBe(false);
    expect(ms).toBeLessThan(1500);
  });

  const rows: [string, string, boolean, boolean?][] = [
    ["B.*h", "Bash", true],
    ["b.*", "Bash", false],
    ["b.*", "Bash", true, true],
    ["as", "Bash", false],
    ["[0-9]{1,3}(\\.[0-9]{1,3}){3}", "10.0.0.1", true],
    ["[0-9]{1,3}(\\.[0-9]{1,3}){3}", "10.0.0", false],
    ["-[A-NP-Za-np-z][A-Za-z]*[RLDwW][A-Za-z]*", "-aR", true],
    ["-[A-NP-Za-np-z][A-Za-z]*[RLDwW][A-Za-z]*", "-oR", false],
    ["-[^-]*[uz][^-]*", "-XU", true, true],
    ["-[^-]*[uz][^-]*", "-XU", false],
    ["a|b|cd", "cd", true],
    ["a?b+c*", "bbb", true],
    ["a{2,}", "a", false],
    ["a{2,}", "aaaa", true],
    ["(ab){0,2}", "ababab", false],
    ["\\d+\\s\\w+", "12 x_y", true],
    ["^abc$", "abc", true],
    [".", "😀", true],
    ["[]a]", "]", true],
    ["x\\.y", "xzy", false],
  ];
  it.each(rows)("%s on %j → %s", (pattern, value, expected, caseInsensitive = false) => {
    expect(compileRegex(pattern, caseInsensitive)(value)).toBe(expected);
  });
});

describe("Lucene's optional regex operators, on by default in Elasticsearch (flags ALL)", () => {
  const rows: [string, string, boolean][] = [
    ["@", "", true],
    ["@", "anything at all", true],
    ["a@z", "a/b/z", true],
    ["a@z", "a/b/y", false],
    ["#", "", false],
    ["a|#", "a", true],
    ["<1-100>", "42", true],
    ["<1-100>", "100", true],
    ["<1-100>", "101", false],
    ["<1-100>", "0", false],
    // Different widths: any number of leading zeros; one width: zero-padded to it.
    ["<1-100>", "0042", true],
    ["<01-10>", "07", true],
    ["<01-10>", "7", false],
    ["<10-01>", "07", true],
    ["port=<1024-65535>", "port=4444", true],
    ["port=<1024-65535>", "port=80", false],
    ["@sh@&@-c@", "bash -c id", true],
    ["@sh@&@-c@", "bash -i", false],
    ["a.*&.*b", "ab", true],
    ["~(foo)", "bar", true],
    ["~(foo)", "foo", false],
    ["~(foo)", "", true],
    ["/tmp/~(@/@)", "/tmp/x", true],
    ["/tmp/~(@/@)", "/tmp/x/y", false],
    ["~a*", "bb", true],
    ["~~a", "a", true],
    ['"a.b"', "a.b", true],
    ['"a.b"', "axb", false],
    ["()", "", true],
  ];
  it.each(rows)("%s on %j → %s", (pattern, value, expected) => {
    expect(compileRegex(pattern, false)(value)).toBe(expected);
  });

  it.each([
    ["<1-2", /expected > to close <n-m>/],
    ["<name>", /named automata/],
    ['"abc', /unterminated/],
  ])("%s is refused: %s", (pattern, message) => {
    expect(() => compileRegex(pattern, false)).toThrow(message);
  });

  it("~ over a hostile value stays linear", () => {
    const { result, ms } = timed(() => compileRegex("~(@a@a@a@b)", false)("a".repeat(ARGV_MAX)));
    expect(result).toBe(true);
    expect(ms).toBeLessThan(1500);
  });
});

describe("case-insensitive matching folds one code point at a time, as Lucene", () => {
  const KELVIN = "\u212a";
  const DOTTED_I = "\u0130";
  const rows: [string, string, boolean][] = [
    [`process.name : "k*"`, `${KELVIN}ate`, true],
    [`process.name : "${KELVIN}ate"`, "KATE", true],
    [`process.name in~ ("kate")`, `${KELVIN}ATE`, true],
    [`process.name regex~ "k.*"`, `${KELVIN}ate`, true],
    [`process.name regex~ "${KELVIN}ate"`, "kate", true],
    [`process.name regex~ "[a-z]ate"`, `${KELVIN}ate`, true],
    // İ is a class of its own: one character, never "i", and never "i" + combining dot.
    [`process.name : "?"`, DOTTED_I, true],
    [`process.name : "a?b"`, `a${DOTTED_I}b`, true],
    [`process.name : "i"`, DOTTED_I, false],
    [`process.name : "${DOTTED_I}"`, "i\u0307", false],
    [`process.name : "${DOTTED_I}"`, DOTTED_I, true],
    [`process.name in~ ("${DOTTED_I}")`, "i\u0307", false],
    [`process.name regex~ "."`, DOTTED_I, true],
    [`startsWith~(process.name, "${DOTTED_I}")`, "i\u0307x", false],
    [`process.name : "σ*"`, "ς", true],
    // Dotless ı has no case partner in Unicode's simple folding (only Turkish rules pair it).
    [`process.name : "i"`, "\u0131", false],
    [`process.name : "I"`, "\u0131", false],
  ];
  it.each(rows)("%s on %j → %s", (where, name, expected) => {
    expect(compileEql(`process where ${where}`).test({ process: { name } })).toBe(expected);
  });
});

describe("the fold classes are Unicode's simple case folding (the `iu` RegExp flags)", () => {
  it("every code point of the Basic Multilingual Plane folds to a key of its class, and its variants share the key", () => {
    for (let cp = 0; cp <= 0xffff; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const key = foldCodePoint(cp);
      if (key === cp) continue;
      expect(new RegExp(`^\\u{${key.toString(16)}}$`, "iu").test(String.fromCodePoint(cp)), cp.toString(16)).toBe(true);
      for (const variant of caseVariants(cp)) expect(foldCodePoint(variant), `${cp.toString(16)} ~ ${variant.toString(16)}`).toBe(key);
    }
  });
});

describe("the literal text a regex's values start with (what rules are indexed by)", () => {
  it("names the literal run before the first operator, never a character a ?, * or {} repeats, nothing across a top-level | or with & or ~", () => {
    expect(regexLiteralPrefix("/var/run/\\w+\\.(pid|lock|reboot)")).toEqual({ text: "/var/run/", whole: false });
    expect(regexLiteralPrefix("^/tmp/x")).toEqual({ text: "/tmp/x", whole: true });
    expect(regexLiteralPrefix("php?[0-9]?")).toEqual({ text: "ph", whole: false });
    expect(regexLiteralPrefix("ab{0,2}c")).toEqual({ text: "a", whole: false });
    expect(regexLiteralPrefix("ab+")).toEqual({ text: "ab", whole: false });
    for (const none of ["abc|def", "a[]|]b|c", ".*x", "ab~c", "ab&c", '"ab"c', "@x", "<1-9>x", "(a|b)c"]) expect(regexLiteralPrefix(none)).toBeUndefined();
  });

  it("every value a regex matches starts with its literal text (property, against the matcher itself)", () => {
    const atom = fc.constantFrom("a", "b", "A", "\\.", ".", "[ab]", "[]a]", "(a|b)", "(ab)", "@", "<1-3>", '"a|b"', "~a", "a&.");
    const piece = fc.tuple(atom, fc.constantFrom("", "?", "*", "+", "{0,1}", "{2}")).map(([a, q]) => a + q);
    const regex = fc.tuple(fc.array(piece, { minLength: 1, maxLength: 5 }), fc.boolean(), fc.array(piece, { maxLength: 3 })).map(
      ([left, alternate, right]) => `${left.join("")}${alternate ? `|${right.join("")}` : ""}`,
    );
    const value = fc.array(fc.constantFrom("a", "b", "A", ".", "|", "1", "2", "]"), { maxLength: 8 }).map((cs) => cs.join(""));
    fc.assert(
      fc.property(regex, fc.array(value, { minLength: 1, maxLength: 20 }), fc.boolean(), (pattern, values, caseInsensitive) => {
        const prefix = regexLiteralPrefix(pattern);
        if (prefix === undefined) return;
        const match = compileRegex(pattern, caseInsensitive);
        for (const v of values) {
          if (!match(v)) continue;
          const head = v.slice(0, prefix.text.length);
          expect(caseInsensitive ? head.toLowerCase() : head).toBe(caseInsensitive ? prefix.text.toLowerCase() : prefix.text);
          if (prefix.whole) expect(v.length).toBe(prefix.text.length);
        }
        // The literal text itself is a value when it is the whole pattern.
        if (prefix.whole) expect(match(prefix.text)).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });
});
