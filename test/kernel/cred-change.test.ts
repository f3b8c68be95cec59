/**
 * uid, gid and session changes from this host's kernel (bpf/process.bpf.c, the set*id and
 * setsid syscall tracepoints): real setpriv, setsid and python calls make cred_change events
 * with the ids before and after, a call that changes nothing makes none, and rules of our own
 * in Elastic's shape (a single query, and `sequence by process.entity_id` from the exec to the
 * change) fire on them through the Elastic program.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Finding } from "sockeye";
import { loadRuleCatalog } from "../../src/rules/catalog.js";
import type { CredChangeEvent, SensorEvent } from "../../src/sensor/events.js";
import { writeEqlRules } from "../fixtures/eql-rule-files.js";
import { PYTHON, Session, attachEngine, kernelTier, run } from "./harness.js";

const tier = kernelTier();
const NOBODY = 65534;

const RULES: Record<string, string> = {
  "test-drop-to-nobody": `sequence by process.entity_id with maxspan=30s
  [process where event.type == "start" and event.action == "exec" and process.name == "setpriv" and user.id == "0"]
  [process where event.type == "change" and event.action == "uid_change" and user.id == "65534" and process.real_user.id == "65534"]`,
  "test-back-to-root": `process where event.type == "change" and event.action == "uid_change" and user.id == "0" and
  user.Ext.real.id == "0" and process.name : "python*"`,
  "test-new-session": `process where event.type == "change" and event.action == "session_id_change" and process.name == "setsid"`,
};

const changesOf = (events: readonly SensorEvent[], pid: number): CredChangeEvent[] =>
  events.filter((e): e is CredChangeEvent => e.kind === "cred_change" && e.task.pid === pid);

describe.runIf(tier.run)("kernel: uid, gid and session changes", () => {
  let session: Session;
  const findings: Finding[] = [];
  const dir = mkdtempSync(join(tmpdir(), "sockeye-credchange-"));

  beforeAll(async () => {
    writeEqlRules(dir, RULES);
    session = await Session.open();
    attachEngine(session, findings, loadRuleCatalog({ rulePaths: [dir] }).rules, { fold: false });
  });

  afterAll(() => {
    session?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("the set*id and setsid programs are live on this kernel", () => {
    // Where a kernel lacks the tracepoints, the empty candidate says so instead (loader.cc).
    expect(session.sensor.liveProgram("cred_change")).toMatch(/^tp\/syscalls\/sys_\{enter,exit\}_set/);
  });

  it("setpriv --reuid/--regid: one gid_change and one uid_change with the ids before and after, and a sequence from its exec fires", async () => {
    const r = await run("setpriv", [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", "/bin/true"]);
    expect(r.status).toBe(0);
    await session.settle(500);
    const changes = changesOf(session.events, r.pid);
    // One record per call, in the order setpriv makes them (util-linux sets the uid first, keeping its capabilities).
    expect(changes.map((c) => [c.changed.uid, c.changed.gid, c.changed.session]).sort()).toEqual([[false, true, false], [true, false, false]]);
    const gid = changes.find((c) => c.changed.gid)!;
    const uid = changes.find((c) => c.changed.uid)!;
    expect(gid.syscall).toMatch(/^set(re|res)?gid$/);
    expect(gid.oldIds).toMatchObject({ gid: 0, egid: 0 });
    expect(gid.ids).toMatchObject({ gid: NOBODY, egid: NOBODY, sgid: NOBODY });
    expect(uid.syscall).toMatch(/^set(re|res)?uid$/);
    expect(uid.oldIds).toMatchObject({ uid: 0, euid: 0, suid: 0 });
    expect(uid.ids).toMatchObject({ uid: NOBODY, euid: NOBODY, suid: NOBODY });
    expect(uid.task.uid).toBe(NOBODY);
    const fired = findings.filter((f) => f.rule.id === "test-drop-to-nobody" && f.process.pid === r.pid);
    expect(fired).toHaveLength(1);
    expect(fired[0]).toMatchObject({ process: { name: "setpriv" } });
  });

  it("seteuid back to root after dropping it: a uid_change whose user.id is 0 fires; a setuid to the uid it has makes no event", async () => {
    const code = [
      "import os",
      "os.setuid(0)", // already root: no change, no event
      `os.setresuid(0, ${NOBODY}, 0)`,
      "os.seteuid(0)",
    ].join("; ");
    const r = await run(PYTHON, ["-c", code]);
    expect(r.status).toBe(0);
    await session.settle(500);
    const changes = changesOf(session.events, r.pid);
    // glibc makes seteuid a setresuid(-1, 0, -1); any of the uid calls would do.
    expect(changes.map((c) => [c.changed.uid, c.oldIds.euid, c.ids.euid])).toEqual([
      [true, 0, NOBODY],
      [true, NOBODY, 0],
    ]);
    expect(changes.map((c) => c.syscall)).toEqual([expect.stringMatching(/^set(re|res)?uid$/), expect.stringMatching(/^set(re|res)?uid$/)]);
    const fired = findings.filter((f) => f.rule.id === "test-back-to-root" && f.process.pid === r.pid);
    expect(fired).toHaveLength(1);
  });

  it("setsid /bin/true: a session_id_change naming the new session, and its rule fires", async () => {
    const r = await run("setsid", ["/bin/true"]);
    expect(r.status).toBe(0);
    await session.settle(500);
    // setsid(1) forks first when it already leads its process group: find its event by comm.
    const changes = session.events.filter(
      (e): e is CredChangeEvent => e.kind === "cred_change" && e.syscall === "setsid" && e.task.comm === "setsid" && (e.task.pid === r.pid || e.task.ppid === r.pid),
    );
    expect(changes).toHaveLength(1);
    expect(changes[0]!.sid).toBe(changes[0]!.task.pid);
    expect(changes[0]!.changed).toEqual({ uid: false, gid: false, session: true });
    const fired = findings.filter((f) => f.rule.id === "test-new-session" && f.process.pid === changes[0]!.task.pid);
    expect(fired).toHaveLength(1);
  });
});

describe.runIf(tier.run)("kernel: a kernel without the set*id tracepoints", () => {
  // The only way to make this kernel refuse them: skip the candidate, as a kernel lacking the
  // tracepoints passes it over (loader.cc). The sensor starts, without change events.
  const CANDIDATE = "tp/syscalls/sys_{enter,exit}_set{,re,res}{u,g}id + sys_exit_setsid";
  let session: Session;
  beforeAll(async () => {
    session = await Session.open({ skipCandidates: [CANDIDATE] });
  });
  afterAll(() => session?.close());

  it("starts with the empty candidate live, says why, and reports no change", async () => {
    expect(session.sensor.liveProgram("cred_change")).toBe("none: uid, gid and session changes go unseen");
    expect(session.sensor.programs.find((p) => p.capability === "cred_change" && p.program === CANDIDATE)).toMatchObject({ live: false, reason: "skipped by option" });
    const r = await run("setpriv", [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", "/bin/true"]);
    expect(r.status).toBe(0);
    await session.settle(500);
    // The sensor saw the process (its exec) but no change of it.
    expect(session.of(r.pid).map((e) => e.kind)).toContain("exec");
    expect(changesOf(session.events, r.pid)).toEqual([]);
  });
});
