/**
 * process.thread.capabilities.effective / .permitted: the kernel's u64 sets decoded as
 * /proc/<pid>/status prints them, named as Elastic Defend names them, on exec and change
 * documents, and rules of our own in the shape of Elastic's capability rules firing on them
 * (a single query, and a `sequence by process.entity_id` from an exec to a uid change).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { Engine, ProcessTable, type SensorEvent } from "sockeye";
import { captureLine, readCapture } from "sockeye/capture";
import { getField } from "../../../src/eql/compile.js";
import { loadRuleCatalog } from "../../../src/rules/catalog.js";
import { CAPABILITY_NAMES, capabilityNames } from "../../../src/rules/elastic/ecs-capabilities.js";
import { buildChangeEcsDocument } from "../../../src/rules/elastic/ecs-change.js";
import { buildExecEcsDocument } from "../../../src/rules/elastic/ecs-exec.js";
import { loadElasticRules } from "../../../src/rules/elastic/loader.js";
import { elasticRule } from "../../../src/rules/elastic/rule.js";
import { decodeBatch } from "../../../src/sensor/decode.js";
import type { CapabilitySets, CredChangeEvent, ExecEvent, TaskContext } from "../../../src/sensor/events.js";
import { writeEqlRules } from "../../fixtures/eql-rule-files.js";
import { batchOf, encodeRecord, type KernelEvent } from "../sensor/record-encoder.js";

const TICK_NS = 10_000_000;
const scratch = mkdtempSync(join(tmpdir(), "sockeye-caps-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const NONE = "0000000000000000";
/** CAP_SETGID (6) and CAP_SETUID (7). */
const SETID = "00000000000000c0";
/** CAP_SYS_PTRACE (19). */
const PTRACE = "0000000000080000";
/** Every capability through CAP_CHECKPOINT_RESTORE (40): root's usual set. */
const FULL = "000001ffffffffff";

const RULES = (() => {
  const dir = mkdtempSync(join(scratch, "rules-"));
  const rules: Record<string, string> = {
    "cap-ptrace-debugger": `process where event.type == "start" and event.action == "exec" and process.name == "gdb" and
  (process.thread.capabilities.effective : "CAP_SYS_PTRACE" or process.thread.capabilities.permitted : "CAP_SYS_PTRACE") and user.id != "0"`,
    "cap-setid-to-root": `sequence by process.entity_id with maxspan=5s
  [process where event.type == "start" and event.action == "exec" and process.name != null and
   (process.thread.capabilities.effective : "CAP_SET?ID" or process.thread.capabilities.permitted : "CAP_SET?ID") and user.id != "0"]
  [process where event.action == "uid_change" and event.type == "change" and
   (process.thread.capabilities.effective : "CAP_SET?ID" or process.thread.capabilities.permitted : "CAP_SET?ID") and user.id == "0"]`,
  };
  return writeEqlRules(dir, rules);
})();
const ourRules = () => loadElasticRules([RULES]).map((result) => elasticRule(result.rule!));

const task = (over: Partial<TaskContext> = {}): TaskContext => ({
  pid: 4242, tid: 4242, ppid: 1, uid: 1000, gid: 1000, cgroupId: 1, startNs: 4242 * TICK_NS, comm: "x", parentComm: "bash", ...over,
});

function execOf(filename: string, capabilities: CapabilitySets | null, t = task(), timeNs = 4e9): ExecEvent {
  return {
    kind: "exec", timeNs, timeMs: timeNs / 1e6, filename, filenameTruncated: false, args: [filename], argsRaw: "",
    argsTruncated: false, loginUid: 1000, stdio: null, capabilities, task: t,
  };
}

/** setuid(0) by a uid-1000 process holding CAP_SETUID: the kernel copies permitted into effective. */
function setuidRoot(capabilities: CapabilitySets | null, timeNs = 5e9): CredChangeEvent {
  return {
    kind: "cred_change", timeNs, timeMs: timeNs / 1e6, task: task({ uid: 0 }), syscall: "setuid",
    changed: { uid: true, gid: false, session: false },
    ids: { uid: 0, euid: 0, suid: 0, gid: 1000, egid: 1000, sgid: 1000 },
    oldIds: { uid: 1000, euid: 1000, suid: 1000, gid: 1000, egid: 1000, sgid: 1000 },
    capabilities,
  };
}

describe("capability names", () => {
  it("name each bit as linux/capability.h does, in number order", () => {
    expect(capabilityNames(NONE)).toEqual([]);
    expect(capabilityNames(SETID)).toEqual(["CAP_SETGID", "CAP_SETUID"]);
    expect(capabilityNames(PTRACE)).toEqual(["CAP_SYS_PTRACE"]);
    // Bits of the high word: CAP_MAC_OVERRIDE is 32, CAP_BPF 39.
    expect(capabilityNames("0000008100000000")).toEqual(["CAP_MAC_OVERRIDE", "CAP_BPF"]);
    expect(capabilityNames(FULL)).toEqual(CAPABILITY_NAMES);
    expect(CAPABILITY_NAMES).toHaveLength(41);
    expect([CAPABILITY_NAMES[0], CAPABILITY_NAMES[21], CAPABILITY_NAMES[40]]).toEqual(["CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_CHECKPOINT_RESTORE"]);
  });

  it("leave out a bit past the last capability sockeye knows, rather than name it by guess", () => {
    expect(capabilityNames("0000020000080000")).toEqual(["CAP_SYS_PTRACE"]);
    expect(capabilityNames("ffffffffffffffff")).toEqual(CAPABILITY_NAMES);
  });
});

describe("capabilities in records and documents", () => {
  it("decode from the kernel's bytes, on exec and change records, null when the kernel could not read them", () => {
    const events: KernelEvent[] = [
      execOf("/usr/bin/gdb", { effective: PTRACE, permitted: FULL }),
      execOf("/usr/bin/true", null),
      setuidRoot({ effective: SETID, permitted: "8000000000000001" }),
    ];
    const decoded = decodeBatch(batchOf(events.map((e) => encodeRecord(e))), 0);
    expect(decoded.dropped).toEqual({});
    expect(decoded.events.map((e) => [e.kind, "capabilities" in e ? e.capabilities : "none"])).toEqual(events.map((e) => [e.kind, "capabilities" in e ? e.capabilities : "none"]));
  });

  it("are process.thread.capabilities.effective / .permitted on the exec document; an empty set is missing, as Elasticsearch indexes []", () => {
    const table = new ProcessTable();
    const doc = buildExecEcsDocument(execOf("/usr/bin/gdb", { effective: NONE, permitted: PTRACE }), table);
    expect(getField(doc, "process.thread.capabilities.permitted")).toEqual(["CAP_SYS_PTRACE"]);
    expect(getField(doc, "process.thread.capabilities.effective")).toBeUndefined();
    const unknown = buildExecEcsDocument(execOf("/usr/bin/gdb", null), table);
    expect(getField(unknown, "process.thread.capabilities.permitted")).toBeUndefined();
    // An event made by code that predates the field (no key at all) reads as unknown, not as a throw.
    const { capabilities: _left, ...older } = execOf("/usr/bin/gdb", null);
    const fromOlder = buildExecEcsDocument(older as ExecEvent, table);
    expect(getField(fromOlder, "process.thread.capabilities.permitted")).toBeUndefined();
    expect(getField(fromOlder, "process.name")).toBe("gdb");
  });

  it("are the sets after the call on the change document", () => {
    const doc = buildChangeEcsDocument(setuidRoot({ effective: SETID, permitted: SETID }), new ProcessTable());
    expect(getField(doc, "process.thread.capabilities.effective")).toEqual(["CAP_SETGID", "CAP_SETUID"]);
    expect(getField(doc, "process.thread.capabilities.permitted")).toEqual(["CAP_SETGID", "CAP_SETUID"]);
  });

  it("fire a rule matching `: \"CAP_SYS_PTRACE\"`, not on a debugger without it or one run by root", () => {
    const fired = (event: ExecEvent) => new Engine({ rules: ourRules(), processes: new ProcessTable(), fold: false, hostName: "h", now: () => 0 })
      .handle(event).map((f) => f.rule.id);
    expect(fired(execOf("/usr/bin/gdb", { effective: NONE, permitted: PTRACE }))).toEqual(["cap-ptrace-debugger"]);
    expect(fired(execOf("/usr/bin/gdb", { effective: NONE, permitted: NONE }))).toEqual([]);
    expect(fired(execOf("/usr/bin/gdb", null))).toEqual([]);
    expect(fired(execOf("/usr/bin/gdb", { effective: FULL, permitted: FULL }, task({ uid: 0 })))).toEqual([]);
  });

  it("complete `CAP_SET?ID` from an exec to the same process's uid change to root", () => {
    const run = (events: SensorEvent[]) => {
      const table = new ProcessTable();
      const engine = new Engine({ rules: ourRules(), processes: table, fold: false, hostName: "h", now: () => 0 });
      return events.flatMap((event) => { table.apply(event); return engine.handle(event); }).map((f) => f.rule.id);
    };
    const caps = { effective: SETID, permitted: SETID };
    expect(run([execOf("/usr/bin/python3", caps), setuidRoot(caps)])).toEqual(["cap-setid-to-root"]);
    // Without CAP_SETUID/CAP_SETGID on the exec (a setuid-root program instead), nothing.
    expect(run([execOf("/usr/bin/python3", { effective: NONE, permitted: NONE }), setuidRoot(caps)])).toEqual([]);
  });

  it("make the catalog count both rules as able to fire, and replay from a capture", async () => {
    const { statuses } = loadRuleCatalog({ rulePaths: [RULES] });
    expect(statuses.filter((s) => s.id?.startsWith("cap-")).map((s) => [s.id, s.status, s.neverFires, s.unprovidedFields])).toEqual([
      ["cap-ptrace-debugger", "runs", undefined, undefined],
      ["cap-setid-to-root", "runs", undefined, undefined],
    ]);
    const events: SensorEvent[] = [execOf("/usr/bin/gdb", { effective: PTRACE, permitted: PTRACE }), setuidRoot({ effective: SETID, permitted: SETID })];
    const replayed: SensorEvent[] = [];
    for await (const e of readCapture(Readable.from(events.map((e) => captureLine(e))))) replayed.push(e);
    expect(replayed).toEqual(events);
    // A capture made before sockeye recorded capabilities replays with them unknown.
    const { capabilities: _dropped, ...old } = events[0] as ExecEvent;
    const fromOld: SensorEvent[] = [];
    for await (const e of readCapture(Readable.from([captureLine(old as ExecEvent)]))) fromOld.push(e);
    expect((fromOld[0] as ExecEvent).capabilities).toBeNull();
  });
});
