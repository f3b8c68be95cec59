/**
 * The rules' index (query-index.ts) and program (program.ts) only ever narrow: checked
 * property-based against the unindexed evaluation, over generated queries and documents of
 * the shapes sockeye makes (Elastic's own rules are not in the repository: their license is
 * Elastic License 2.0).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileEql, compileEqlQuery, type CompiledEql, type EqlDocument } from "../../../src/eql/compile.js";
import type { ProcessInfo, ProcessView } from "../../../src/engine/rule.js";
import type { ExecEvent } from "../../../src/sensor/events.js";
import { buildExecEcsDocument } from "../../../src/rules/elastic/ecs-exec.js";
import type { LoadedElasticRule } from "../../../src/rules/elastic/loader.js";
import { QueryIndex } from "../../../src/rules/elastic/query-index.js";
import { elasticRules } from "../../../src/rules/elastic/rule.js";
import { OFFLINE_HOST } from "../../../src/host/host-view.js";
import { SHAPES } from "../../../src/rules/elastic/shapes.js";

const KELVIN = "\u212a";
const NAMES = ["bash", "Bash", "sh", "python3", "curl", "nc", "kate", `${KELVIN}ATE`, "true"];
const PATHS = ["/bin/bash", "/tmp/x", "/TMP/x", "/usr/bin/python3", "/dev/shm/a", "/bin/true", "./run"];
const ARGS = ["-c", "-e", "--output=x", "id", "/dev/tcp/h/1", "GLIBC_TUNABLES=x"];
const VALUES = [...NAMES, ...PATHS, ...ARGS, "0", "1000", "exec", "fork", "end", "start"];

/** Fields a query reads: indexed ones, one that is not, and one no document carries. */
const STRING_FIELDS = ["process.name", "process.executable", "process.parent.name", "process.parent.executable", "process.args", "event.action", "user.id", "process.command_line", "auditd.data.syscall"];

const quote = (text: string) => JSON.stringify(text);
const value = fc.constantFrom(...VALUES);
/** A wildcard pattern from a value: cut at a place, with `*` or `?` there and maybe at the ends. */
const pattern = fc.tuple(value, fc.nat(), fc.constantFrom("*", "?", ""), fc.boolean(), fc.boolean()).map(([v, at, mark, head, tail]) => {
  const cut = at % (v.length + 1);
  return `${head ? "*" : ""}${v.slice(0, cut)}${mark}${v.slice(cut)}${tail ? "*" : ""}`;
});
const list = <T>(item: fc.Arbitrary<T>) => fc.array(item, { minLength: 1, maxLength: 3 });

const condition: fc.Arbitrary<string> = fc.oneof(
  fc.tuple(fc.constantFrom(...STRING_FIELDS), fc.constantFrom("==", "!="), value).map(([f, op, v]) => `${f} ${op} ${quote(v)}`),
  fc.tuple(fc.constantFrom(...STRING_FIELDS), fc.constantFrom("in", "in~", "not in"), list(value)).map(([f, op, vs]) => `${f} ${op} (${vs.map(quote).join(", ")})`),
  fc.tuple(fc.constantFrom(...STRING_FIELDS), fc.constantFrom(":", "like", "like~"), list(pattern)).map(([f, op, ps]) => `${f} ${op} (${ps.map(quote).join(", ")})`),
  fc.tuple(fc.constantFrom(...STRING_FIELDS), fc.constantFrom("regex", "regex~"), value).map(([f, op, v]) => `${f} ${op} ${quote(`${v.replace(/[.*+?()[\]{}|\\"#@<>~&]/g, "\\$&")}.*`)}`),
  // Regexes indexed by their literal head (regexLiteralPrefix): optional characters, groups, alternation at and below the top.
  fc.tuple(fc.constantFrom(...STRING_FIELDS), fc.constantFrom("regex", "regex~"), value, value, fc.constantFrom("?", "*", "{0,2}", "+", "|", "(|)", "")).map(([f, op, a, b, form]) => {
    const esc = (v: string) => v.replace(/[.*+?()[\]{}|\\"#@<>~&]/g, "\\$&");
    const pattern = form === "|" ? `${esc(a)}|${esc(b)}` : form === "(|)" ? `${esc(a)}(${esc(b)}|x).*` : form === "" ? esc(a) : `${esc(a)}${form}.*`;
    return `${f} ${op} ${quote(pattern)}`;
  }),
  fc.tuple(fc.constantFrom(...STRING_FIELDS), value).map(([f, v]) => `startsWith~(${f}, ${quote(v)})`),
);

const expression: fc.Arbitrary<string> = fc.letrec<{ expr: string }>((tie) => ({
  expr: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    condition,
    fc.tuple(tie("expr"), fc.constantFrom("and", "or"), tie("expr")).map(([a, op, b]) => `(${a} ${op} ${b})`),
    tie("expr").map((e) => `not ${e}`),
  ),
})).expr;

const query = expression.map((where) => compileEql(`process where ${where}`));

function setPath(doc: Record<string, unknown>, path: string, v: unknown): void {
  const parts = path.split(".");
  let at = doc;
  for (const part of parts.slice(0, -1)) at = (at[part] ??= {}) as Record<string, unknown>;
  at[parts[parts.length - 1]!] = v;
}

/** A document of one of the process shapes: its constants, and pool values in some of its fields. */
const document = fc
  .tuple(
    fc.constantFrom(...SHAPES["process"]!),
    fc.dictionary(fc.constantFrom(...STRING_FIELDS), fc.oneof(value, fc.array(value, { maxLength: 3 }))),
  )
  .map(([shape, values]) => {
    const doc = structuredClone<Record<string, unknown>>(shape.constants);
    for (const [field, v] of Object.entries(values)) {
      if (shape.fields.has(field) && !["event.action", "event.type", "event.category"].includes(field)) setPath(doc, field, field === "process.args" || !Array.isArray(v) ? v : v[0]);
    }
    return doc;
  });

describe("QueryIndex never skips a query for a document it matches", () => {
  it("over generated queries and documents", () => {
    fc.assert(
      fc.property(fc.array(query, { minLength: 1, maxLength: 12 }), fc.array(document, { minLength: 1, maxLength: 8 }), (queries, docs) => {
        const index = new QueryIndex(queries);
        for (const doc of docs) {
          const event = {};
          // The list the engine's gate hands out is the marked queries, ascending.
          const candidates = index.candidates(event, doc);
          expect(candidates).toEqual(queries.flatMap((_, number) => (index.isCandidate(event, doc, number) ? [number] : [])));
          queries.forEach((q, number) => {
            if (!q.test(doc)) return;
            expect(index.isCandidate(event, doc, number), `${JSON.stringify(q.where)} on ${JSON.stringify(doc)}`).toBe(true);
            // The same anchors tested on the document directly (what the program asks past a prefilter).
            expect(index.holds(doc, number), `holds: ${JSON.stringify(q.where)} on ${JSON.stringify(doc)}`).toBe(true);
          });
        }
      }),
      { numRuns: 400 },
    );
  });

  it("narrows: a document reaches only the queries anchored on its values", () => {
    const queries = [
      'process where process.name == "curl"',
      'process where process.name in~ ("BASH", "sh")',
      'process where process.executable : "/tmp/*"',
      'process where process.name : "*.py"',
      'process where process.args == "-c" or process.name == "nc"',
      'process where process.command_line : "*x*"',
      'process where auditd.data.syscall == "unshare" or process.name == "unshare"',
    ].map((q) => compileEql(q));
    const index = new QueryIndex(queries);
    const reached = (doc: EqlDocument) => {
      const event = {};
      return queries.flatMap((_, number) => (index.isCandidate(event, doc, number) ? [number] : []));
    };
    expect(reached({ process: { name: "Bash", executable: "/usr/bin/bash", args: ["bash", "-c", "id"] } })).toEqual([1, 4, 5]);
    expect(reached({ process: { name: "x.py", executable: "/tmp/x.py", args: ["x.py"] } })).toEqual([2, 3, 5]);
    expect(reached({ process: { name: "unshare", executable: "/usr/bin/unshare" } })).toEqual([5, 6]);
    expect(reached({ process: { name: "KATE" } })).toEqual([5]);
    const held = (doc: EqlDocument) => queries.flatMap((_, number) => (index.holds(doc, number) ? [number] : []));
    expect(held({ process: { name: "Bash", executable: "/usr/bin/bash", args: ["bash", "-c", "id"] } })).toEqual([1, 4, 5]);
    expect(held({ process: { name: "x.py", executable: "/tmp/x.py", args: ["x.py"] } })).toEqual([2, 3, 5]);
    // Whole prefixes, not their first four characters as the marks file them.
    expect(held({ process: { name: "y", executable: "/tmpfoo" } })).toEqual([5]);
    expect(reached({ process: { name: "y", executable: "/tmpfoo" } })).toEqual([2, 5]);
  });
});

describe("the rules' program decides as each rule's query on its own would", () => {
  const parentInfo: ProcessInfo = { pid: 10, ppid: 1, startNs: 1, executable: "/usr/bin/bash", name: "bash", args: ["bash"], uid: 1000, comm: "bash", cgroupId: 1, exited: false };
  const processes: ProcessView = { get: (pid) => (pid === 10 ? parentInfo : undefined), ancestors: () => [] };
  const rule = (where: string, n: number): LoadedElasticRule => {
    const text = `process where ${where}`;
    return { meta: { id: `gen-${n}`, name: `generated ${n}`, description: "", severity: "low", threat: [], source: "generated" }, query: text, compiled: compileEqlQuery(text) };
  };
  const exec = fc.tuple(fc.constantFrom(...PATHS), fc.array(fc.constantFrom(...VALUES), { maxLength: 4 })).map(
    ([filename, args]): ExecEvent => ({
      kind: "exec", timeNs: 1e12, timeMs: 1.8e12, filename, filenameTruncated: false, args: [filename, ...args], argsRaw: "", argsTruncated: false, loginUid: 1000, stdio: null, capabilities: null,
      task: { pid: 20, tid: 20, ppid: 10, uid: 1000, gid: 1000, cgroupId: 1, startNs: 2, comm: "x", parentComm: "bash" },
    }),
  );

  it("over generated rules and execs", () => {
    fc.assert(
      fc.property(fc.array(expression, { minLength: 1, maxLength: 10 }), fc.array(exec, { minLength: 1, maxLength: 6 }), (wheres, events) => {
        const loaded = wheres.map(rule);
        const rules = elasticRules(loaded);
        for (const event of events) {
          const doc = buildExecEcsDocument(event, processes);
          const ctx = { processes, host: OFFLINE_HOST, now: () => 0 };
          // What the engine asks first (Rule.gate): only the admitted rules run.
          const admitted = rules[0]!.gate!.gate.admit(event, ctx);
          rules.forEach((r, k) => {
            expect(r.gate!.member).toBe(k);
            const matches = (loaded[k]!.compiled as CompiledEql).test(doc);
            if (matches) expect(admitted === undefined || admitted.includes(k), `admitted: ${loaded[k]!.query} on ${event.filename}`).toBe(true);
            const fired = r.evaluate(event, ctx) != null;
            expect(fired, `${loaded[k]!.query} on ${event.filename} ${JSON.stringify(event.args)}`).toBe(matches);
          });
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe("sequences that can never complete", () => {
  const loaded = (query: string): LoadedElasticRule => ({
    meta: { id: "seq", name: "seq", description: "", severity: "low", threat: [], source: "generated" }, query, compiled: compileEqlQuery(query),
  });

  it("a step no document can match: the rule needs no event", () => {
    const [rule] = elasticRules([loaded('sequence by process.entity_id [process where process.name == "a"] [process where event.action == "module_load"]')]);
    expect(rule!.kinds).toEqual([]);
  });

  it("an until step no document can match leaves the rule running", () => {
    const [rule] = elasticRules([loaded('sequence by process.entity_id [process where process.name == "a"] [process where process.name == "b"] until [process where event.action == "module_load"]')]);
    expect(rule!.kinds).toContain("exec");
  });
});
