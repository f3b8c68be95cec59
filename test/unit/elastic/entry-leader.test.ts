/**
 * process.entry_leader derived from the process table and /proc facts (ecs-entry-leader.ts):
 * Elastic's case table on the evidence, and nothing where the evidence is missing.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compileEqlQuery, getField } from "../../../src/eql/compile.js";
import { SequenceMatcher } from "../../../src/eql/sequence.js";
import { entityId } from "../../../src/process/ecs-process.js";
import type { LiveProcessFacts, ProcessInfo, ProcessView } from "../../../src/process/process-view.js";
import { loadRuleCatalog } from "../../../src/rules/catalog.js";
import { entryLeaderOf, ttyKind } from "../../../src/rules/elastic/ecs-entry-leader.js";
import { buildExecEcsDocument } from "../../../src/rules/elastic/ecs-exec.js";
import { buildConnectEcsDocument } from "../../../src/rules/elastic/ecs-network.js";
import type { ConnectEvent, ExecEvent, TaskContext } from "../../../src/sensor/events.js";
import { writeEqlRules } from "../../fixtures/eql-rule-files.js";

const PTS = (136 << 8) | 2;
const VT1 = (4 << 8) | 1;
const SERIAL = (4 << 8) | 64;

/** One process: its table entry and, while it lives, its /proc facts (sid, tty). */
interface Proc {
  pid: number;
  ppid: number;
  exe: string;
  sid?: number;
  tty?: number;
  start?: number;
  uid?: number;
}

class Host {
  readonly entries = new Map<number, ProcessInfo>();
  readonly facts = new Map<number, LiveProcessFacts>();
  readonly reads: number[] = [];
  readonly view: ProcessView;
  containers = new Set<number>();

  constructor(procs: Proc[]) {
    for (const p of procs) this.add(p);
    this.view = {
      get: (pid, startNs) => {
        const entry = this.entries.get(pid);
        return entry !== undefined && (startNs === undefined || entry.startNs === startNs) ? entry : undefined;
      },
      ancestors: () => [],
      liveFacts: (pid, startNs) => {
        this.reads.push(pid);
        const entry = this.entries.get(pid);
        return entry !== undefined && entry.startNs === startNs ? this.facts.get(pid) : undefined;
      },
      bootId: () => "boot",
      container: (cgroupId) => (this.containers.has(cgroupId) ? { id: "c".repeat(64), runtime: "docker" } : undefined),
    };
  }

  add(p: Proc): void {
    const name = p.exe.slice(p.exe.lastIndexOf("/") + 1);
    this.entries.set(p.pid, {
      pid: p.pid, ppid: p.ppid, startNs: p.start ?? p.pid * 1e9, executable: p.exe, name, args: [name], uid: p.uid ?? 1000, comm: name.slice(0, 15), cgroupId: 1, exited: false,
    });
    if (p.sid !== undefined) this.facts.set(p.pid, { euid: p.uid ?? 1000, egid: 1000, sid: p.sid, pgid: p.pid, ttyNr: p.tty ?? 0 });
  }

  /** The process exits: /proc no longer shows it (the table may keep it a while). */
  exit(pid: number): void {
    this.facts.delete(pid);
  }

  entryOf(pid: number) {
    const e = this.entries.get(pid)!;
    return entryLeaderOf(pid, e.startNs, e.ppid, this.facts.get(pid)?.sid, e, this.view, () => this.facts.get(pid));
  }

  /** The type and leader pid of `pid`'s entry leader; null: none; undefined: not known. */
  summary(pid: number): [string, number] | null | undefined {
    const answer = this.entryOf(pid);
    return answer == null ? answer : [answer.type, answer.leader.pid];
  }

  task(pid: number, extra: Partial<TaskContext> = {}): TaskContext {
    const e = this.entries.get(pid)!;
    return { pid, tid: pid, ppid: e.ppid, uid: e.uid, gid: 1000, cgroupId: 1, startNs: e.startNs, comm: e.comm, parentComm: "", ...extra };
  }

  exec(pid: number, extra: Partial<TaskContext> = {}, sid?: number): ExecEvent {
    const e = this.entries.get(pid)!;
    return {
      kind: "exec", timeNs: 1, timeMs: pid, task: this.task(pid, extra), filename: e.executable, filenameTruncated: false, args: e.args, argsRaw: "",
      argsTruncated: false, loginUid: 1000, stdio: null, capabilities: null, ...(sid !== undefined ? { sid } : {}),
    };
  }
}

/** A host like a systemd one: init, sshd with a login over ssh, cron, a serial and a console login, a container, tmux. */
function systemdHost(): Host {
  return new Host([
    { pid: 1, ppid: 0, exe: "/usr/lib/systemd/systemd", sid: 1 },
    { pid: 500, ppid: 1, exe: "/usr/sbin/sshd", sid: 500 },
    { pid: 600, ppid: 500, exe: "/usr/sbin/sshd", sid: 500 }, // the connection's sshd
    { pid: 601, ppid: 600, exe: "/usr/sbin/sshd", sid: 500 }, // its privilege-separated child
    { pid: 700, ppid: 601, exe: "/usr/bin/bash", sid: 700, tty: PTS }, // the login shell: a session leader
    { pid: 710, ppid: 700, exe: "/usr/bin/gdb", sid: 700, tty: PTS },
    { pid: 720, ppid: 710, exe: "/usr/bin/sh", sid: 700, tty: PTS },
    { pid: 300, ppid: 1, exe: "/usr/sbin/cron", sid: 300 },
    { pid: 310, ppid: 300, exe: "/usr/bin/sh", sid: 300 },
    { pid: 400, ppid: 1, exe: "/usr/sbin/agetty", sid: 400, tty: SERIAL },
    { pid: 410, ppid: 1, exe: "/usr/bin/login", sid: 410, tty: VT1 },
    { pid: 411, ppid: 410, exe: "/usr/bin/bash", sid: 410, tty: VT1 },
    { pid: 420, ppid: 1, exe: "/usr/sbin/agetty", sid: 420, tty: (4 << 8) | 2 },
    { pid: 800, ppid: 1, exe: "/usr/bin/containerd-shim-runc-v2", sid: 800 },
    { pid: 810, ppid: 800, exe: "/usr/local/bin/entrypoint.sh", sid: 810 },
    { pid: 811, ppid: 810, exe: "/usr/bin/python3", sid: 810 },
    { pid: 900, ppid: 700, exe: "/usr/bin/tmux", sid: 900 }, // the tmux server, started from the ssh login
    { pid: 910, ppid: 900, exe: "/usr/bin/bash", sid: 910, tty: (136 << 8) | 5 },
  ]);
}

describe("process.entry_leader", () => {
  it("Elastic's case table: sshd's child, a service init started, a serial terminal, a console login, a container runtime's child", () => {
    const host = systemdHost();
    // ssh: the shell sshd started leads the session; every process in it has that entry leader.
    expect(host.summary(700)).toEqual(["sshd", 700]);
    expect(host.summary(710)).toEqual(["sshd", 700]);
    expect(host.summary(720)).toEqual(["sshd", 700]);
    // A service init started leads its own entry; its children share it.
    expect(host.summary(300)).toEqual(["init", 300]);
    expect(host.summary(310)).toEqual(["init", 300]);
    expect(host.summary(500)).toEqual(["init", 500]);
    // sshd's own processes are in sshd's service session.
    expect(host.summary(601)).toEqual(["init", 500]);
    // A serial line is a terminal; a console session is entered by login (a getty on it is init's service).
    expect(host.summary(400)).toEqual(["terminal", 400]);
    expect(host.summary(411)).toEqual(["console", 410]);
    expect(host.summary(420)).toEqual(["init", 420]);
    // A container runtime's child.
    expect(host.summary(811)).toEqual(["container", 810]);
    // A session leader that matches no case inherits its parent's: tmux's sessions were entered over ssh.
    expect(host.summary(900)).toEqual(["sshd", 700]);
    expect(host.summary(910)).toEqual(["sshd", 700]);
    // init has none.
    expect(host.summary(1)).toBeNull();
  });

  it("init's own session has none; a leader whose parent is in it is its own, of unknown type; kernel threads have none", () => {
    const host = new Host([
      { pid: 1, ppid: 0, exe: "/process_api", sid: 0 },
      { pid: 50, ppid: 1, exe: "/usr/bin/agent", sid: 0 },
      { pid: 60, ppid: 50, exe: "/usr/bin/bash", sid: 60 },
      { pid: 61, ppid: 60, exe: "/usr/bin/node", sid: 60 },
      { pid: 70, ppid: 2, exe: "/usr/sbin/modprobe", sid: 0 },
    ]);
    expect(host.summary(50)).toBeNull();
    expect(host.summary(61)).toEqual(["unknown", 60]);
    expect(host.summary(70)).toBeNull();
  });

  it("missing evidence leaves it unknown, never guessed", () => {
    const host = systemdHost();
    // The process is gone (no /proc facts, so no session id).
    host.exit(720);
    expect(host.summary(720)).toBeUndefined();
    // The session leader is not in the table.
    host.add({ pid: 1000, ppid: 1, exe: "/usr/bin/sh", sid: 999 });
    expect(host.summary(1000)).toBeUndefined();
    // The table's entry for the session id started after the process: another process reused the pid.
    host.add({ pid: 1100, ppid: 1, exe: "/usr/bin/sh", sid: 1101, start: 5e9 });
    host.add({ pid: 1101, ppid: 1, exe: "/usr/bin/sh", sid: 1101, start: 6e9 });
    expect(host.summary(1100)).toBeUndefined();
    // The leader is gone: its terminal cannot be read.
    host.add({ pid: 1200, ppid: 500, exe: "/usr/bin/bash", sid: 1200 });
    host.add({ pid: 1201, ppid: 1200, exe: "/usr/bin/sleep", sid: 1200 });
    host.exit(1200);
    expect(host.summary(1201)).toBeUndefined();
    // The leader's parent is not in the table.
    host.add({ pid: 1300, ppid: 1299, exe: "/usr/bin/bash", sid: 1300 });
    expect(host.summary(1300)).toBeUndefined();
    // The leader's parent matches no case and is gone: where it was entered is not known.
    host.add({ pid: 1400, ppid: 1, exe: "/usr/bin/screen", sid: 1400 });
    host.add({ pid: 1401, ppid: 1400, exe: "/usr/bin/screen", sid: 1401 });
    host.add({ pid: 1410, ppid: 1401, exe: "/usr/bin/bash", sid: 1410 });
    host.exit(1401);
    expect(host.summary(1410)).toBeUndefined();
  });

  it("an answer once established stays when the leader's parent and the leader exit later; a new program in the leader is decided again", () => {
    const host = systemdHost();
    expect(host.summary(710)).toEqual(["sshd", 700]);
    host.exit(601);
    host.entries.delete(601);
    expect(host.summary(710)).toEqual(["sshd", 700]);
    // The leader exits (the table keeps a new, exited entry for it); its session's members keep the answer.
    host.exit(700);
    host.entries.set(700, { ...host.entries.get(700)!, exited: true });
    expect(host.summary(710)).toEqual(["sshd", 700]);
    // A new session leader whose parent is already gone is not known ...
    host.add({ pid: 730, ppid: 601, exe: "/usr/bin/bash", sid: 730 });
    expect(host.summary(730)).toBeUndefined();
    // ... and the leader's earlier answer was kept on its table entry: a new entry (an exec) is decided afresh.
    host.add({ pid: 700, ppid: 601, exe: "/usr/bin/zsh", sid: 700, start: 700e9 });
    expect(host.summary(710)).toBeUndefined();
  });

  it("terminal kinds from tty_nr: pts, virtual consoles, serial lines", () => {
    expect(ttyKind(0)).toBe("none");
    expect(ttyKind(PTS)).toBe("pts");
    expect(ttyKind((143 << 8) | 255)).toBe("pts");
    expect(ttyKind(VT1)).toBe("console");
    expect(ttyKind(SERIAL)).toBe("tty");
    expect(ttyKind((5 << 8) | 1)).toBe("none"); // /dev/console itself
  });

  it("exec and connect documents carry it, read only when a rule reads it; a container with no evidence keeps type \"container\" alone", () => {
    const host = systemdHost();
    const doc = buildExecEcsDocument(host.exec(720), host.view);
    expect(host.reads).toEqual([]);
    expect(getField(doc, "process.entry_leader.entity_id")).toBe(entityId(700, 700e9, "boot"));
    expect(getField(doc, "process.entry_leader.pid")).toBe(700);
    expect(getField(doc, "process.entry_leader.name")).toBe("bash");
    expect(getField(doc, "process.entry_leader.executable")).toBe("/usr/bin/bash");
    expect(getField(doc, "process.entry_leader.args")).toEqual(["bash"]);
    expect(getField(doc, "process.entry_leader.same_as_process")).toBe(false);
    expect(getField(doc, "process.entry_leader.entry_meta.type")).toBe("sshd");
    expect(getField(doc, "process.entry_leader.entry_meta.source.ip")).toBeUndefined();
    expect(getField(buildExecEcsDocument(host.exec(700), host.view), "process.entry_leader.same_as_process")).toBe(true);

    // A program gone before a rule looks: its exec record's session id still names its session (and its leader).
    host.exit(720);
    expect(getField(buildExecEcsDocument(host.exec(720), host.view), "process.entry_leader.pid")).toBeUndefined();
    const gone = buildExecEcsDocument(host.exec(720, {}, 700), host.view);
    expect(getField(gone, "process.entry_leader.entity_id")).toBe(entityId(700, 700e9, "boot"));
    expect(getField(gone, "process.session_leader.pid")).toBe(700);
    // Its session's leader gone too, before any answer was established: not known.
    const fresh = systemdHost();
    fresh.exit(720);
    fresh.exit(700);
    expect(getField(buildExecEcsDocument(fresh.exec(720, {}, 700), fresh.view), "process.entry_leader.pid")).toBeUndefined();

    const connect: ConnectEvent = {
      kind: "connect", timeNs: 1, timeMs: 1, task: host.task(710, { uid: 0 }), fd: 3, result: 0, family: "inet", familyNumber: 2, socketType: "stream", protocol: 6,
      source: "tracepoint", remote: { address: "127.0.0.1", port: 4444 }, unixPath: null, socketIno: 0, socketOnFds: [],
    };
    expect(getField(buildConnectEcsDocument(connect, host.view), "process.entry_leader.entity_id")).toBe(entityId(700, 700e9, "boot"));

    // In a container whose runtime's child is not in the table: type "container" only.
    host.containers.add(77);
    host.add({ pid: 1500, ppid: 1499, exe: "/usr/bin/nc", sid: 1499 });
    const contained = buildExecEcsDocument(host.exec(1500, { cgroupId: 77 }), host.view);
    expect(getField(contained, "process.entry_leader")).toEqual({ entry_meta: { type: "container" } });
    // With the evidence, all of it.
    expect(getField(buildExecEcsDocument(host.exec(811, { cgroupId: 77 }), host.view), "process.entry_leader.pid")).toBe(810);
  });

  it("a sequence joined on process.entry_leader.entity_id joins one session's processes, not another's", () => {
    const host = systemdHost();
    host.add({ pid: 730, ppid: 700, exe: "/usr/bin/sudo", sid: 700, tty: PTS, uid: 0 });
    host.add({ pid: 311, ppid: 300, exe: "/usr/bin/id", sid: 300, uid: 0 });
    const compiled = compileEqlQuery(`sequence by process.entry_leader.entity_id with maxspan=1m
      [process where process.name == "gdb" and user.id != "0"]
      [process where user.id == "0"]`);
    if (compiled.kind !== "sequence") throw new Error("not a sequence");
    const matcher = new SequenceMatcher<number>(compiled);
    let t = 0;
    const feed = (pid: number) => matcher.feed(buildExecEcsDocument(host.exec(pid), host.view), "process", (t += 100), pid);
    expect(feed(710)).toEqual([]);
    // cron's root child is in another entry session: no match.
    expect(feed(311)).toEqual([]);
    expect(feed(730)).toEqual([[710, 730]]);
  });

  it("the catalog counts a sequence joined by process.entry_leader.entity_id as able to fire and says what is given", () => {
    const dir = mkdtempSync(join(tmpdir(), "sockeye-entry-"));
    try {
      writeEqlRules(dir, {
        "fx-entry-join": `sequence by host.id, process.entry_leader.entity_id with maxspan=30s
  [process where event.action == "exec" and process.name == "gdb" and user.id != "0"]
  [network where event.action == "connection_attempted" and user.id == "0"]`,
      });
      const status = loadRuleCatalog({ rulePaths: [dir], lenient: true }).statuses.find((s) => s.id === "fx-entry-join");
      expect(status?.status).toBe("runs");
      expect(status?.neverFires).toBeUndefined();
      expect(status?.unprovidedFields).toBeUndefined();
      expect(status?.notes?.[0]).toMatch(/^process\.entry_leader: pid, entity_id, name, executable, args, same_as_process and entry_meta\.type/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
