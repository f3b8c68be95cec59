/**
 * Credential and session change documents (process / change / uid_change, gid_change,
 * session_id_change): the kernel record decoded, its ECS document, rules of our own in
 * Elastic's shape that read them (a single query and a `sequence by process.entity_id`), the
 * catalog's verdict, a capture's round trip, and the default rules' indifference to them.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { Engine, ProcessTable, type SensorEvent } from "sockeye";
import { captureLine, readCapture } from "sockeye/capture";
import { getField } from "../../../src/eql/compile.js";
import { entityId } from "../../../src/process/ecs-process.js";
import { loadRuleCatalog } from "../../../src/rules/catalog.js";
import { buildChangeEcsDocument, changeAction } from "../../../src/rules/elastic/ecs-change.js";
import { loadElasticRules } from "../../../src/rules/elastic/loader.js";
import { elasticRule } from "../../../src/rules/elastic/rule.js";
import { decodeBatch } from "../../../src/sensor/decode.js";
import type { CredChangeEvent, ExecEvent, TaskContext } from "../../../src/sensor/events.js";
import { writeEqlRules } from "../../fixtures/eql-rule-files.js";
import { batchOf, encodeRecord } from "../sensor/record-encoder.js";

const TICK_NS = 10_000_000;
const scratch = mkdtempSync(join(tmpdir(), "sockeye-cred-change-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Writes rule files of our own (Elastic's TOML shape) and returns their folder. */
function ruleDir(rules: Record<string, string>): string {
  const dir = mkdtempSync(join(scratch, "rules-"));
  return writeEqlRules(dir, rules);
}

const RULES = ruleDir({
  "cc-root-from-user": `process where event.type == "change" and event.action == "uid_change" and
  user.id == "0" and process.real_user.id == "0" and process.saved_user.id == "0"`,
  "cc-tmp-then-root": `sequence by process.entity_id with maxspan=10s
  [process where event.type == "start" and event.action == "exec" and process.executable like "/tmp/*" and user.id != "0"]
  [process where event.type == "change" and event.action in ("uid_change", "gid_change") and (user.id == "0" or group.id == "0")]`,
  "cc-new-session": `process where event.action == "session_id_change" and process.name == "setsid" and process.session_leader.pid != null`,
});
const ourRules = () => loadElasticRules([RULES]).map((result) => elasticRule(result.rule!));

const task = (over: Partial<TaskContext> = {}): TaskContext => ({
  pid: 4242, tid: 4242, ppid: 1, uid: 1000, gid: 1000, cgroupId: 1, startNs: 4242 * TICK_NS, comm: "x", parentComm: "bash", ...over,
});

function execOf(filename: string, t: TaskContext, timeNs: number): ExecEvent {
  return {
    kind: "exec", timeNs, timeMs: timeNs / 1e6, filename, filenameTruncated: false, args: [filename], argsRaw: "",
    argsTruncated: false, loginUid: 1000, stdio: null, capabilities: null, task: t,
  };
}

/** A setuid(0) that made a uid-1000 process root (real, effective and saved). */
function rootUidChange(timeNs: number): CredChangeEvent {
  return {
    kind: "cred_change", timeNs, timeMs: timeNs / 1e6, task: task({ uid: 0 }), syscall: "setuid",
    changed: { uid: true, gid: false, session: false },
    ids: { uid: 0, euid: 0, suid: 0, gid: 1000, egid: 1000, sgid: 1000 },
    oldIds: { uid: 1000, euid: 0, suid: 0, gid: 1000, egid: 1000, sgid: 1000 },
    capabilities: null,
  };
}

describe("cred_change records", () => {
  it("decode from the kernel's bytes, ids before and after, and an absent sid outside setsid", () => {
    const events: CredChangeEvent[] = [
      rootUidChange(5e9),
      {
        kind: "cred_change", timeNs: 6e9, timeMs: 6e3, task: task({ uid: 1000, gid: 1000 }), syscall: "setsid", sid: 4242,
        changed: { uid: false, gid: false, session: true },
        ids: { uid: 1000, euid: 1000, suid: 1000, gid: 1000, egid: 1000, sgid: 1000 },
        oldIds: { uid: 1000, euid: 1000, suid: 1000, gid: 1000, egid: 1000, sgid: 1000 },
        capabilities: { effective: "0000000000000000", permitted: "00000000000000c0" },
      },
    ];
    const decoded = decodeBatch(batchOf(events.map((e) => encodeRecord(e))), 0);
    expect(decoded.dropped).toEqual({});
    expect(decoded.events).toEqual(events);
  });
});

describe("cred_change documents", () => {
  it("have the shape Elastic Defend sends: process / change with the new ids, effective ones in user.id", () => {
    const table = new ProcessTable();
    const t = task();
    table.apply(execOf("/tmp/x", t, 4e9));
    const doc = buildChangeEcsDocument(rootUidChange(5e9), table);
    expect(doc).toMatchObject({
      event: { category: ["process"], type: ["change"], action: "uid_change", kind: "event" },
      host: { os: { type: "linux" } },
      process: {
        pid: 4242, entity_id: entityId(4242, 4242 * TICK_NS, ""), name: "x", executable: "/tmp/x",
        user: { id: "0" }, real_user: { id: "0" }, saved_user: { id: "0" },
        group: { id: "1000" }, real_group: { id: "1000" }, saved_group: { id: "1000" },
        parent: { pid: 1 },
      },
      user: { id: "0", Ext: { real: { id: "0" } } },
      group: { id: "1000", Ext: { real: { id: "1000" } } },
    });
    // seteuid(0) alone: user.id is the effective uid, user.Ext.real.id keeps the real one.
    const seteuid: CredChangeEvent = { ...rootUidChange(5e9), task: task(), ids: { uid: 1000, euid: 0, suid: 0, gid: 1000, egid: 1000, sgid: 1000 } };
    const euidDoc = buildChangeEcsDocument(seteuid, table);
    expect([getField(euidDoc, "user.id"), getField(euidDoc, "user.Ext.real.id"), getField(euidDoc, "process.real_user.id")]).toEqual(["0", "1000", "1000"]);
  });

  it("name their action by what changed", () => {
    const base = rootUidChange(1);
    expect(changeAction({ ...base, changed: { uid: true, gid: false, session: false } })).toBe("uid_change");
    expect(changeAction({ ...base, changed: { uid: false, gid: true, session: false } })).toBe("gid_change");
    expect(changeAction({ ...base, changed: { uid: false, gid: false, session: true } })).toBe("session_id_change");
  });

  it("fire a rule reading event.action == \"uid_change\", and not on a gid change", () => {
    const table = new ProcessTable();
    const engine = new Engine({ rules: ourRules(), processes: table, fold: false, hostName: "h", now: () => 0 });
    const gidOnly: CredChangeEvent = {
      ...rootUidChange(3e9), changed: { uid: false, gid: true, session: false }, syscall: "setgid", task: task(),
      ids: { uid: 1000, euid: 1000, suid: 1000, gid: 0, egid: 0, sgid: 0 },
    };
    expect(engine.handle(gidOnly).map((f) => f.rule.id)).toEqual([]);
    const fired = engine.handle(rootUidChange(5e9));
    expect(fired.map((f) => [f.rule.id, f.process.pid, f.event.category])).toEqual([["cc-root-from-user", 4242, ["process"]]]);
  });

  it("complete a sequence by process.entity_id: an exec from /tmp, then the same process becoming root", () => {
    const table = new ProcessTable();
    const engine = new Engine({ rules: ourRules(), processes: table, fold: false, hostName: "h", now: () => 0 });
    const events: SensorEvent[] = [execOf("/tmp/x", task(), 4e9), rootUidChange(5e9)];
    const findings = events.flatMap((event) => { table.apply(event); return engine.handle(event); });
    expect(findings.map((f) => f.rule.id).sort()).toEqual(["cc-root-from-user", "cc-tmp-then-root"]);
    // The finding lists both steps; the change step with the ids it made.
    const sequence = findings.find((f) => f.rule.id === "cc-tmp-then-root") as unknown as { sockeye: { sequence: unknown[] } };
    expect(sequence.sockeye.sequence).toEqual([
      { kind: "exec", pid: 4242, time_ms: 4000, executable: "/tmp/x" },
      { kind: "cred_change", pid: 4242, time_ms: 5000, ids: { uid: 0, euid: 0, gid: 1000, egid: 1000 } },
    ]);
    // Another process's change does not complete it.
    const other = new ProcessTable();
    const engine2 = new Engine({ rules: ourRules(), processes: other, fold: false, hostName: "h", now: () => 0 });
    const stranger = { ...rootUidChange(5e9), task: task({ pid: 5000, tid: 5000, startNs: 5000 * TICK_NS, uid: 0 }) };
    const fired2 = [execOf("/tmp/x", task(), 4e9), stranger].flatMap((event) => { other.apply(event); return engine2.handle(event); });
    expect(fired2.map((f) => f.rule.id)).toEqual(["cc-root-from-user"]);
  });

  it("reach only the rules that read them, and sockeye rules counts those as able to fire", () => {
    const kinds = Object.fromEntries(ourRules().map((rule) => [rule.meta.id, [...rule.kinds].sort()]));
    expect(kinds).toEqual({ "cc-new-session": ["cred_change"], "cc-root-from-user": ["cred_change"], "cc-tmp-then-root": ["cred_change", "exec"] });
    const { statuses } = loadRuleCatalog({ rulePaths: [RULES] });
    expect(statuses.filter((s) => s.id?.startsWith("cc-")).map((s) => [s.id, s.status, s.neverFires])).toEqual([
      ["cc-new-session", "runs", undefined],
      ["cc-root-from-user", "runs", undefined],
      ["cc-tmp-then-root", "runs", undefined],
    ]);
  });

  it("replay from a capture as they were recorded", async () => {
    const event = rootUidChange(5e9);
    const replayed: SensorEvent[] = [];
    for await (const e of readCapture(Readable.from([captureLine(event)]))) replayed.push(e);
    expect(replayed).toEqual([event]);
  });
});

describe("cred_change in the default configuration", () => {
  it("no built-in, opt-in or shipped Elastic rule subscribes to them (sshd's and sudo's changes cost no rule work)", () => {
    const defaults = loadRuleCatalog({ commandRelay: true }).rules;
    expect(defaults.length).toBeGreaterThan(3);
    expect(defaults.filter((rule) => rule.kinds.includes("cred_change")).map((rule) => rule.meta.id)).toEqual([]);
  });
});
