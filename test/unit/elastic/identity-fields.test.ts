import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { compileEql, compileEqlQuery, getField } from "../../../src/eql/compile.js";
import type { LiveProcessFacts, ProcessInfo, ProcessView } from "../../../src/process/process-view.js";
import { isInteractive, ProcessTable } from "../../../src/process/table.js";
import { NameDatabase, parseIdFile } from "../../../src/host/user-names.js";
import { buildExecEcsDocument, buildLifecycleEcsDocument } from "../../../src/rules/elastic/ecs-exec.js";
import { ttyCharDevice } from "../../../src/rules/elastic/ecs-identity.js";
import { envVarNamesOf } from "../../../src/rules/elastic/rule.js";
import { SHAPES, shapesFor } from "../../../src/rules/elastic/shapes.js";
import type { ExecEvent, ExitEvent, ForkEvent, StdioFd, TaskContext } from "../../../src/sensor/events.js";
import { ProcHostView } from "../../../src/host/proc-host.js";
import { START_TICK_NS } from "../../../src/host/host-view.js";
import { environEntriesOfBytes } from "../../../src/host/proc-parse.js";

const task = (p: Partial<TaskContext> = {}): TaskContext => ({
  pid: 200, tid: 200, ppid: 100, uid: 1000, gid: 1000, cgroupId: 1, startNs: 2_000_000_000, comm: "su", parentComm: "bash", ...p,
});

function exec(filename: string, args: string[], stdio: ExecEvent["stdio"] = null, t = task()): ExecEvent {
  return { kind: "exec", timeNs: 1, timeMs: 1, task: t, filename, filenameTruncated: false, args, argsRaw: "", argsTruncated: false, loginUid: 1000, stdio, capabilities: null };
}

function info(pid: number, executable: string, args: string[], extra: Partial<ProcessInfo> = {}): ProcessInfo {
  const name = executable.slice(executable.lastIndexOf("/") + 1);
  return { pid, ppid: 1, startNs: 1_000_000_000, executable, name, args, uid: 1000, comm: name, cgroupId: 1, exited: false, ...extra };
}

function view(entries: ProcessInfo[], facts: Record<number, LiveProcessFacts> = {}, env: Record<number, string[]> = {}): ProcessView & { reads: number[] } {
  const reads: number[] = [];
  return {
    reads,
    get: (pid) => entries.find((e) => e.pid === pid),
    ancestors: () => [],
    liveFacts: (pid) => (reads.push(pid), facts[pid]),
    environment: (pid, _start, names) => env[pid]?.filter((e) => names.has(e.split("=")[0]!)),
    userName: (uid) => ({ 0: "root", 1000: "alice", 7: "lp" })[uid],
    groupName: (gid) => ({ 0: "root", 1000: "alice" })[gid],
  };
}

const tty = (index: number, controlling = true): StdioFd => ({ kind: "tty", ino: 3, ttyIndex: index, controlling });
const pipe: StdioFd = { kind: "pipe", ino: 9, dev: 12 };

describe("identity fields of process documents", () => {
  it("effective ids come from the live process, real ones from the kernel; both are named", () => {
    // The table already holds the exec (the engine applies an event before the rules see it).
    const self = info(200, "/usr/bin/su", ["su"], { startNs: 2_000_000_000 });
    const processes = view([info(100, "/usr/bin/bash", ["bash"], { interactive: true }), self], {
      200: { euid: 0, egid: 1000, sid: 90, pgid: 200, ttyNr: (136 << 8) | 3 },
      100: { euid: 1000, egid: 1000, sid: 90, pgid: 100, ttyNr: 0 },
    });
    const doc = buildExecEcsDocument(exec("/usr/bin/su", ["su"]), processes);
    expect(processes.reads).toEqual([]);
    const q = (text: string) => compileEql(`process where ${text}`).test(doc);
    expect(q('process.user.id == "0" and process.real_user.id != "0" and process.parent.user.id != "0"')).toBe(true);
    expect(getField(doc, "process.user.name")).toBe("root");
    expect(getField(doc, "process.parent.group.name")).toBe("alice");
    expect(getField(doc, "user.name")).toBe("alice");
    expect(getField(doc, "user.Ext.real.id")).toBe("1000");
    expect(getField(doc, "group.Ext.real.id")).toBe("1000");
    expect(getField(doc, "process.tty.char_device.major")).toBe(136);
    expect(getField(doc, "process.tty.char_device.minor")).toBe(3);
    expect(getField(doc, "process.parent.interactive")).toBe(true);
    // The process leads its group; the session leader (90) is not in the table: pid only.
    expect(getField(doc, "process.group_leader.name")).toBe("su");
    expect(getField(doc, "process.session_leader.pid")).toBe(90);
    expect(getField(doc, "process.session_leader.name")).toBeUndefined();
  });

  it("process.entry_leader.entry_meta.type is \"container\" for a process whose cgroup is a container's, with no other evidence; missing on the host", () => {
    const hostView = view([]);
    const inContainer: ProcessView = {
      ...hostView,
      container: (cgroupId) => (cgroupId === 77 ? { id: "a".repeat(64), runtime: "docker" } : undefined),
    };
    const rule = compileEql('process where process.entry_leader.entry_meta.type == "container" and process.name == "nc"');
    const contained = buildExecEcsDocument(exec("/usr/bin/nc", ["nc", "-lvp", "4444"], null, task({ cgroupId: 77 })), inContainer);
    expect(getField(contained, "process.entry_leader.entry_meta.type")).toBe("container");
    expect(getField(contained, "process.entry_leader.executable")).toBeUndefined();
    expect(rule.test(contained)).toBe(true);
    const onHost = buildExecEcsDocument(exec("/usr/bin/nc", ["nc", "-lvp", "4444"], null, task({ cgroupId: 5 })), inContainer);
    expect(getField(onHost, "process.entry_leader.entry_meta.type")).toBeUndefined();
    expect(rule.test(onHost)).toBe(false);
    // The catalog knows the field's values (ecs-entry-leader.ts): "sshd" is one, "teleport" is not.
    expect(shapesFor(compileEql('process where process.entry_leader.entry_meta.type == "sshd"')).map((shape) => shape.kinds[0])).toEqual(["exec", "fork", "already_running", "cred_change"]);
    expect(shapesFor(compileEql('process where process.entry_leader.entry_meta.type == "teleport"'))).toEqual([]);
    expect(shapesFor(compileEql('process where process.entry_leader.entry_meta.type == "container"')).map((shape) => shape.kinds[0])).toEqual(["exec", "fork", "already_running", "cred_change"]);
    // A view that cannot tell containers (a replay) never says "container".
    expect(rule.test(buildExecEcsDocument(exec("/usr/bin/nc", ["nc"], null, task({ cgroupId: 77 })), hostView))).toBe(false);
  });

  it("a process already gone has no effective ids, leaders or tty: missing, not guessed", () => {
    const doc = buildExecEcsDocument(exec("/usr/bin/su", ["su"]), view([]));
    for (const field of ["process.user.id", "process.group.id", "process.tty.char_device.major", "process.session_leader.pid", "process.parent.user.id"]) {
      expect(getField(doc, field)).toBeUndefined();
    }
    expect(compileEql('process where process.user.id == "0"').test(doc)).toBe(false);
  });

  it("process.parent.working_directory: the live parent's, asked for that incarnation; missing without a parent entry", () => {
    const asked: [number, number | undefined][] = [];
    const cwd = (entries: ProcessInfo[]): ProcessView => ({
      ...view(entries),
      workingDirectory: (pid, startNs) => (asked.push([pid, startNs]), pid === 100 ? "/tmp/build" : "/"),
    });
    const doc = buildExecEcsDocument(exec("/usr/sbin/insmod", ["insmod", "x.ko"]), cwd([info(100, "/usr/bin/bash", ["bash"], { startNs: 500 })]));
    expect(asked).toEqual([]);
    expect(compileEql('process where process.parent.working_directory like "/tmp*"').test(doc)).toBe(true);
    expect(asked).toEqual([[100, 500]]);
    const orphan = buildExecEcsDocument(exec("/usr/sbin/insmod", ["insmod", "x.ko"]), cwd([]));
    expect(getField(orphan, "process.parent.working_directory")).toBeUndefined();
  });

  it("a session leader from the table lends its facts only if it started no later", () => {
    const leader = info(90, "/usr/bin/dpkg", ["dpkg", "-i", "x.deb"]);
    const facts = { 200: { euid: 0, egid: 0, sid: 90, pgid: 90, ttyNr: 0 } };
    const doc = buildExecEcsDocument(exec("/var/lib/dpkg/info/x.postinst", ["x.postinst"]), view([leader], facts));
    expect(getField(doc, "process.session_leader.name")).toBe("dpkg");
    expect(getField(doc, "process.group_leader.executable")).toBe("/usr/bin/dpkg");
    const later = info(90, "/usr/bin/dpkg", ["dpkg"], { startNs: 3_000_000_000 });
    const doc2 = buildExecEcsDocument(exec("/var/lib/dpkg/info/x.postinst", ["x.postinst"]), view([later], facts));
    expect(getField(doc2, "process.session_leader.name")).toBeUndefined();
  });

  it("process.interactive: stdin and stderr on the controlling terminal", () => {
    expect(isInteractive([tty(3), tty(3), tty(3)])).toBe(true);
    expect(isInteractive([tty(3), pipe, tty(3)])).toBe(true);
    expect(isInteractive([pipe, tty(3), tty(3)])).toBe(false);
    expect(isInteractive([tty(3, false), tty(3, false), tty(3, false)])).toBe(false);
    expect(isInteractive([tty(3), tty(3), tty(4)])).toBe(false);
    expect(getField(buildExecEcsDocument(exec("/bin/sh", ["sh"], [tty(1), tty(1), tty(1)]), view([])), "process.interactive")).toBe(true);
    expect(getField(buildExecEcsDocument(exec("/bin/sh", ["sh"], null), view([])), "process.interactive")).toBeUndefined();
  });

  it("tty_nr decodes as the kernel encodes it", () => {
    expect(ttyCharDevice(0)).toBeUndefined();
    expect(ttyCharDevice((136 << 8) | 5)).toEqual({ major: 136, minor: 5 });
    // minor 300: low byte in bits 0-7, the rest from bit 20 on.
    expect(ttyCharDevice((136 << 8) | (300 & 0xff) | ((300 & ~0xff) << 12))).toEqual({ major: 136, minor: 300 });
  });

  it("env_vars: only the variables loaded rules name", () => {
    const query = compileEqlQuery('process where process.env_vars like~ ("HISTSIZE=0", "HISTFILE=/dev/null") or process.env_vars : "*GLIBC_TUNABLES=glibc.*"');
    expect([...envVarNamesOf(query)].sort()).toEqual(["GLIBC_TUNABLES", "HISTFILE", "HISTSIZE"]);
    expect([...envVarNamesOf(compileEqlQuery('process where process.env_vars : "*"'))]).toEqual([]);
  });

  it("exit and fork documents", () => {
    const sshd = info(200, "/usr/sbin/sshd", ["/usr/sbin/sshd", "-D", "-R"], { startNs: 2_000_000_000, exited: true });
    const exit: ExitEvent = { kind: "exit", timeNs: 1, timeMs: 1, task: task({ comm: "sshd" }), exitCode: 255 << 8 };
    const end = buildLifecycleEcsDocument(exit, view([sshd]));
    expect(compileEql('process where event.type == "end" and event.action == "end" and process.name == "sshd" and process.exit_code != 0 and process.command_line == "/usr/sbin/sshd -D -R"').test(end)).toBe(true);
    const killed = buildLifecycleEcsDocument({ ...exit, exitCode: 11 }, view([sshd]));
    expect(getField(killed, "process.exit_code")).toBeUndefined();
    const fork: ForkEvent = { kind: "fork", timeNs: 1, timeMs: 1, task: task({ comm: "postgres" }) };
    const pg = info(200, "/usr/lib/postgresql/bin/postgres", ["postgres"], { startNs: 2_000_000_000 });
    const doc = buildLifecycleEcsDocument(fork, view([pg]));
    expect(getField(doc, "event.action")).toBe("fork");
    expect(getField(doc, "process.name")).toBe("postgres");
  });

  it("a rule subscribes to fork, exit and already_running events only when a step can match their documents", () => {
    const kinds = (text: string) => shapesFor(compileEql(text)).flatMap((s) => s.kinds);
    expect(kinds('process where event.type == "start" and event.action == "exec"')).toEqual(["exec"]);
    expect(kinds('process where event.type == "start"')).toEqual(["exec", "fork"]);
    expect(kinds('process where event.type == "end" and process.name == "sshd"')).toEqual(["exit"]);
    expect(kinds('process where event.type == "end" and process.user.id == "0"')).toEqual([]);
    expect(kinds('process where event.action == "already_running" and process.user.id == "0"')).toEqual(["already_running"]);
    expect(kinds('process where process.name == "sshd"')).toEqual(["exec", "fork", "exit", "already_running", "cred_change"]);
    expect(kinds('process where event.type == "change" and process.name == "sshd"')).toEqual(["cred_change"]);
    expect(kinds('process where event.action == "gid_change"')).toEqual(["cred_change"]);
    expect(kinds('process where event.type == "change" and event.action == "exec"')).toEqual([]);
    // Network documents: connects (connect and outbound records) and accepts, told apart by event.action.
    expect(kinds('network where event.action == "connection_accepted"')).toEqual(["accept"]);
    expect(kinds('network where event.type == "start" and destination.port == 22')).toEqual(["connect", "outbound", "accept"]);
    expect(SHAPES["any"]!.length).toBe(7);
  });
});

describe("the process table's /proc reads and the host's names", () => {
  let root = "";
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it("reads effective ids, session, group and tty of the same incarnation only", () => {
    root = mkdtempSync(join(tmpdir(), "sockeye-proc-"));
    const dir = join(root, "300");
    mkdirSync(dir);
    // pid (comm) state ppid pgrp session tty_nr ... starttime (field 22) = 250 ticks.
    const rest = ["S", "1", "300", "290", String((136 << 8) | 2), ...Array<string>(14).fill("0"), "250", "0"];
    writeFileSync(join(dir, "stat"), `300 (su) ${rest.join(" ")}\n`);
    writeFileSync(join(dir, "status"), "Name:\tsu\nUid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\n");
    writeFileSync(join(dir, "cmdline"), "su\0");
    writeFileSync(join(dir, "environ"), "HOME=/root\0HISTFILE=/dev/null\0SECRET=x\0");
    const table = new ProcessTable({ host: new ProcHostView({ procRoot: root, names: new NameDatabase({ passwdPath: join(root, "passwd"), groupPath: join(root, "group") }) }) });
    writeFileSync(join(root, "passwd"), "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/a:/bin/sh\n");
    writeFileSync(join(root, "group"), "root:x:0:\n");
    table.seedFromProc();
    const start = 250 * 10_000_000;
    expect(table.liveFacts(300, start)).toEqual({ euid: 0, egid: 1000, sid: 290, pgid: 300, ttyNr: (136 << 8) | 2 });
    expect(table.liveFacts(300, start + 5_000_000_000)).toBeUndefined();
    expect(table.environment(300, start, new Set(["HISTFILE"]))).toEqual(["HISTFILE=/dev/null"]);
    expect(table.environment(300, start, new Set())).toBeUndefined();
    expect(table.userName(1000)).toBe("alice");
    expect(table.groupName(1000)).toBeUndefined();
    // A replay's table never asks this host.
    expect(new ProcessTable({ host: new ProcHostView({ procRoot: root }) }).liveFacts(300, start)).toBeUndefined();
  });

  it("reads only the named variables of environ, whole names only, past a large environment, and nothing of a gone process", () => {
    root = mkdtempSync(join(tmpdir(), "sockeye-proc-"));
    const dir = join(root, "301");
    mkdirSync(dir);
    const rest = ["S", "1", "301", "301", "0", ...Array<string>(14).fill("0"), "250", "0"];
    writeFileSync(join(dir, "stat"), `301 (x) ${rest.join(" ")}\n`);
    // Past the first read's 64 KiB, a name inside another entry's value, a longer name ending in a wanted one.
    const padding = `PAD=${"p".repeat(200_000)}`;
    writeFileSync(join(dir, "environ"), `XHISTFILE=1\0A=HISTFILE=2\0${padding}\0HISTFILE=/dev/null\0GLIBC_TUNABLES=glibc.a=glibc.b=1\0HISTFILE=again`);
    const host = new ProcHostView({ procRoot: root });
    const start = 250 * 10_000_000;
    expect(host.environment(301, start, new Set(["GLIBC_TUNABLES", "HISTFILE"]))).toEqual([
      "HISTFILE=/dev/null", "GLIBC_TUNABLES=glibc.a=glibc.b=1", "HISTFILE=again",
    ]);
    // Another incarnation of the pid: not its environment.
    expect(host.environment(301, start + 5_000_000_000, new Set(["HISTFILE"]))).toBeUndefined();
    expect(host.environment(302, start, new Set(["HISTFILE"]))).toBeUndefined();
    expect(environEntriesOfBytes(Buffer.from("HISTSIZE=0\0"), new Set(["HISTSIZE", "HISTFILESIZE"]))).toEqual(["HISTSIZE=0"]);
  });

  it("reads a real process's named variables from this host's /proc, and nothing once it has exited", async () => {
    const child = spawn("sleep", ["30"], { env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HISTFILE: "/dev/null", OTHER: "x" }, stdio: "ignore" });
    const exited = new Promise((resolve) => child.on("exit", resolve));
    try {
      const pid = child.pid!;
      // The start time the kernel events carry (stat field 22, in clock ticks).
      let stat = "";
      for (let tries = 0; tries < 200 && !/\(sleep\)/.test(stat); tries++) {
        stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        if (!/\(sleep\)/.test(stat)) await new Promise((r) => setTimeout(r, 10));
      }
      const startNs = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]) * START_TICK_NS;
      const host = new ProcHostView();
      expect(host.environment(pid, startNs, new Set(["HISTFILE", "GLIBC_TUNABLES"]))).toEqual(["HISTFILE=/dev/null"]);
      expect(host.environment(pid, startNs + 10 * START_TICK_NS, new Set(["HISTFILE"]))).toBeUndefined();
    } finally {
      child.kill("SIGKILL");
      await exited;
    }
    expect(new ProcHostView().environment(child.pid!, 0, new Set(["HISTFILE"]))).toBeUndefined();
  });

  it("parses passwd and group lines; the first line of an id wins", () => {
    expect([...parseIdFile("# c\nroot:x:0:0::/:/bin/sh\n+nis\nbad\ntoor:x:0:0::/:/bin/sh\nlp:x:7:7::/:/bin/false\n")]).toEqual([
      [0, "root"],
      [7, "lp"],
    ]);
  });
});
