/**
 * process.entry_leader on real sessions of this host (src/rules/elastic/ecs-entry-leader.ts): a
 * login over a real sshd on loopback is entered by the shell sshd starts, every process of that
 * session names it (checked against /proc), and rules of our own in the shape of Elastic's gdb
 * CAP_SYS_PTRACE sequences (`sequence by host.id, process.entry_leader.entity_id`: a debugger
 * holding CAP_SYS_PTRACE run by a user, then a root exec or a root connect in the same entry
 * session) fire on one session's processes and not across sessions.
 */
import { spawn, spawnSync } from "node:child_process";
import { createServer, type AddressInfo, type Server } from "node:net";
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Engine, ProcHostView, ProcessTable, type Finding } from "sockeye";
import { getField } from "../../src/eql/compile.js";
import { START_TICK_NS } from "../../src/host/host-view.js";
import { entityId } from "../../src/process/ecs-process.js";
import { loadRuleCatalog } from "../../src/rules/catalog.js";
import { buildExecEcsDocument } from "../../src/rules/elastic/ecs-exec.js";
import type { ExecEvent } from "../../src/sensor/events.js";
import { writeEqlRules } from "../fixtures/eql-rule-files.js";
import { PYTHON, Session, kernelTier, run, startSshd, type Sshd } from "./harness.js";

const tier = kernelTier();
const NOBODY = 65534;

const RULES: Record<string, string> = {
  "test-debugger-then-root-exec": `sequence by host.id, process.entry_leader.entity_id with maxspan=1m
  [process where event.type == "start" and event.action == "exec" and process.name == "gdb" and
     process.thread.capabilities.permitted : "CAP_SYS_PTRACE" and user.id != "0"]
  [process where event.type == "start" and event.action == "exec" and process.name == "id" and user.id == "0"]`,
  "test-debugger-then-root-connect": `sequence by host.id, process.entry_leader.entity_id with maxspan=1m
  [process where event.type == "start" and event.action == "exec" and process.name == "gdb" and
     process.thread.capabilities.permitted : "CAP_SYS_PTRACE" and user.id != "0"]
  [network where event.type == "start" and event.action == "connection_attempted" and user.id == "0" and process.name : "python*"]`,
};

/** Fields 4 (ppid) and 6 (session) of /proc/<pid>/stat, and its start in clock ticks. */
function procStat(pid: number): { ppid: number; sid: number; startTicks: number } {
  const text = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { ppid: Number(fields[1]), sid: Number(fields[3]), startTicks: Number(fields[19]) };
}

describe.runIf(tier.run)("kernel: process.entry_leader of real sessions", () => {
  let session: Session;
  let sshd: Sshd | undefined;
  let processes: ProcessTable;
  /** A loopback listener root's connect reaches (it closes each connection). */
  let listener: Server;
  const findings: Finding[] = [];
  const dir = mkdtempSync(join(tmpdir(), "sockeye-entry-"));
  /** The real gdb where this host has one, else a program named gdb (the rules read the name and the capability). */
  let gdb = "";

  const ssh = (command: string) => ["ssh", [...sshd!.clientOptions, "-p", String(sshd!.port), "root@127.0.0.1", command]] as const;

  beforeAll(async () => {
    const rules = mkdtempSync(join(tmpdir(), "sockeye-entry-rules-"));
    writeEqlRules(rules, RULES);
    const which = spawnSync("sh", ["-c", "command -v gdb"], { encoding: "utf8" });
    if (which.status === 0 && which.stdout.trim() !== "") {
      gdb = which.stdout.trim();
    } else {
      chmodSync(dir, 0o755);
      gdb = join(dir, "gdb");
      copyFileSync("/bin/true", gdb);
      chmodSync(gdb, 0o755);
    }
    console.info(`entry-leader: the debugger is ${gdb}`);
    sshd = await startSshd();
    listener = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
    session = await Session.open();
    processes = new ProcessTable({ host: new ProcHostView() });
    processes.seedFromProc();
    const engine = new Engine({ rules: loadRuleCatalog({ rulePaths: [rules] }).rules, processes, fold: false });
    rmSync(rules, { recursive: true, force: true });
    session.sensor.subscribe((events) => {
      for (const e of events) for (const f of engine.handle(e)) findings.push(f);
    });
  }, 30_000);

  afterAll(async () => {
    await sshd?.stop();
    await new Promise((resolve) => listener?.close(resolve));
    session?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("a process of an ssh login: its entry leader is the shell sshd started (type sshd), as /proc shows it", async () => {
    // `; true` keeps the shell from exec'ing sleep: the shell stays the session's leader.
    const [cmd, args] = ssh("sleep 30; true");
    const client = spawn(cmd, args, { stdio: "ignore" });
    try {
      let sleep: ExecEvent | undefined;
      for (let waited = 0; sleep === undefined && waited < 20_000; waited += 100) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        sleep = session.events.find((e): e is ExecEvent => e.kind === "exec" && e.args[0] === "sleep" && e.args[1] === "30");
      }
      expect(sleep, "the sleep of the ssh login was not seen").toBeDefined();
      const { pid, startNs } = sleep!.task;
      // What /proc says: the session's leader, and its parent, an sshd.
      const stat = procStat(pid);
      const leader = procStat(stat.sid);
      expect(stat.sid).not.toBe(pid);
      expect(basename(readlinkSync(`/proc/${leader.ppid}/exe`))).toMatch(/^sshd/);
      const leaderExe = readlinkSync(`/proc/${stat.sid}/exe`);

      const doc = buildExecEcsDocument(sleep!, processes);
      expect(getField(doc, "process.entry_leader.entry_meta.type")).toBe("sshd");
      expect(getField(doc, "process.entry_leader.pid")).toBe(stat.sid);
      expect(getField(doc, "process.entry_leader.entity_id")).toBe(entityId(stat.sid, leader.startTicks * START_TICK_NS, processes.bootId()));
      expect(getField(doc, "process.entry_leader.name")).toBe(basename(leaderExe));
      expect(getField(doc, "process.entry_leader.same_as_process")).toBe(false);
      expect(getField(doc, "process.entry_leader.entry_meta.source.ip")).toBeUndefined();
      // The process itself is not the leader; its session leader is the same process.
      expect(getField(doc, "process.entry_leader.entity_id")).toBe(getField(doc, "process.session_leader.entity_id"));
      expect(getField(doc, "process.entity_id")).toBe(entityId(pid, startNs, processes.bootId()));
    } finally {
      client.kill("SIGKILL");
    }
  }, 40_000);

  it("a debugger holding CAP_SYS_PTRACE run as nobody, then root's exec and connect in the same ssh login: both sequences fire; a root exec of another session does not join", async () => {
    const before = findings.length;
    const setpriv = `setpriv --reuid=${NOBODY} --regid=${NOBODY} --clear-groups --inh-caps=+sys_ptrace --ambient-caps=+sys_ptrace`;
    // A connect document reads the session from /proc: the connecting process stays a second,
    // as a root shell of an attack would (one gone before the rule looks has no entry leader).
    const connect = `${PYTHON} -c 'import socket, time; s = socket.create_connection(("127.0.0.1", ${(listener.address() as AddressInfo).port})); time.sleep(1); s.close()'`;
    // The login waits on a file between the debugger and root's steps, so another session's root exec comes in between.
    const gate = join(dir, "gate");
    const [cmd, args] = ssh(`${setpriv} ${gdb} -batch -nx -ex quit </dev/null >/dev/null 2>&1; ` +
      `for i in $(seq 200); do [ -e ${gate} ] && break; sleep 0.1; done; id -u; ${connect}; true`);
    const login = run(cmd, [...args]);
    let debugger_: ExecEvent | undefined;
    for (let waited = 0; debugger_ === undefined && waited < 20_000; waited += 100) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      debugger_ = session.events.find((e): e is ExecEvent => e.kind === "exec" && e.filename === gdb && e.task.uid === NOBODY);
    }
    expect(debugger_, "the debugger's exec was not seen").toBeDefined();
    // Root's exec in this test's own session: another entry leader, so no sequence completes.
    const other = await run("id", ["-u"]);
    expect(other.stdout).toBe("0\n");
    await session.settle(500);
    const ours = () => findings.slice(before).filter((f) => f.rule.id in RULES);
    expect(ours()).toEqual([]);
    spawnSync("touch", [gate]);
    const done = await login;
    expect(done.stdout, done.stderr).toBe("0\n");
    await session.settle(1000);

    type Step = { kind: string; pid: number };
    const stepsOf = (f: Finding) => (f as unknown as { sockeye: { sequence: Step[] } }).sockeye.sequence;
    const exec = ours().filter((f) => f.rule.id === "test-debugger-then-root-exec");
    expect(exec).toHaveLength(1);
    expect(stepsOf(exec[0]!).map((s) => s.kind)).toEqual(["exec", "exec"]);
    expect(stepsOf(exec[0]!)[0]!.pid).toBe(debugger_!.task.pid);
    expect(exec[0]!.process.name).toBe("id");
    expect(exec[0]!.process.pid).not.toBe(other.pid);
    const connects = ours().filter((f) => f.rule.id === "test-debugger-then-root-connect");
    expect(connects).toHaveLength(1);
    expect(stepsOf(connects[0]!)[0]!.pid).toBe(debugger_!.task.pid);
    expect(stepsOf(connects[0]!)[1]!.kind).toMatch(/^(connect|outbound)$/);
  }, 60_000);
});
