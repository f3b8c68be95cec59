/**
 * Capability sets from this host's kernel (bpf/task.bpf.h fill_cap_sets, on exec and
 * credential-change records): what a real process holds, as its own /proc/self/status prints
 * it; ambient capabilities setpriv hands an unprivileged program; and rules of our own in the
 * shape of Elastic's capability rules (`process.thread.capabilities.* : "CAP_…"`, a sequence
 * from an exec holding CAP_SETUID to the same process's uid change to root) firing on them.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Finding, ProcessTable } from "sockeye";
import { getField } from "../../src/eql/compile.js";
import { loadRuleCatalog } from "../../src/rules/catalog.js";
import { capabilityNames } from "../../src/rules/elastic/ecs-capabilities.js";
import { buildExecEcsDocument } from "../../src/rules/elastic/ecs-exec.js";
import type { CredChangeEvent, ExecEvent, SensorEvent } from "../../src/sensor/events.js";
import { writeEqlRules } from "../fixtures/eql-rule-files.js";
import { PYTHON, Session, attachEngine, kernelTier, run } from "./harness.js";

const tier = kernelTier();
const NOBODY = 65534;

/** Capability numbers (linux/capability.h) and setpriv's names for them. */
const CAPS = { sys_ptrace: 19, net_raw: 13, setuid: 7, setgid: 6 } as const;

/** This host's bounding set (a container may drop capabilities): setpriv can raise only those in it. */
function boundingSet(): bigint {
  const line = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync("/proc/self/status", "utf8"));
  if (line === null) throw new Error("/proc/self/status has no CapBnd line");
  return BigInt(`0x${line[1]}`);
}
const holds = (set: bigint, cap: number) => ((set >> BigInt(cap)) & 1n) === 1n;

const RULES: Record<string, string> = {
  // The shape of Elastic's debugger rule, on a program any host has.
  "test-cap-unprivileged-holder": `process where event.type == "start" and event.action == "exec" and process.name == "grep" and
  (process.thread.capabilities.effective : ("CAP_SYS_PTRACE", "CAP_NET_RAW") or process.thread.capabilities.permitted : ("CAP_SYS_PTRACE", "CAP_NET_RAW")) and
  user.id != "0"`,
  "test-cap-setid-to-root": `sequence by host.id, process.entity_id with maxspan=30s
  [process where event.type == "start" and event.action == "exec" and process.name != null and
   (process.thread.capabilities.effective : "CAP_SET?ID" or process.thread.capabilities.permitted : "CAP_SET?ID") and user.id != "0"]
  [process where event.action == "uid_change" and event.type == "change" and
   (process.thread.capabilities.effective : "CAP_SET?ID" or process.thread.capabilities.permitted : "CAP_SET?ID") and user.id == "0"]`,
};

/** CapPrm and CapEff as a process printed them from its /proc/self/status. */
function printedSets(stdout: string): { effective: string; permitted: string } {
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s*([0-9a-f]{16})$`, "m").exec(stdout);
    if (m === null) throw new Error(`no ${name} line in: ${stdout}`);
    return m[1]!;
  };
  return { effective: field("CapEff"), permitted: field("CapPrm") };
}

const execOf = (events: readonly SensorEvent[], pid: number, filename: string): ExecEvent | undefined =>
  events.find((e): e is ExecEvent => e.kind === "exec" && e.task.pid === pid && e.filename.endsWith(filename));

describe.runIf(tier.run)("kernel: capability sets on exec and change records", () => {
  let session: Session;
  let processes: ProcessTable;
  const findings: Finding[] = [];
  const dir = mkdtempSync(join(tmpdir(), "sockeye-caps-"));
  const bounding = boundingSet();
  // Elastic's debugger rule asks for CAP_SYS_PTRACE; a container without it in its bounding
  // set gets CAP_NET_RAW (Docker's default set keeps it), which the rule above also reads.
  const held = holds(bounding, CAPS.sys_ptrace) ? "sys_ptrace" : "net_raw";

  beforeAll(async () => {
    writeEqlRules(dir, RULES);
    session = await Session.open();
    processes = attachEngine(session, findings, loadRuleCatalog({ rulePaths: [dir] }).rules, { fold: false }).processes;
  });

  afterAll(() => {
    session?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("a root process's exec record holds the sets it printed from its own /proc/self/status", async () => {
    const r = await run("grep", ["^Cap", "/proc/self/status"]);
    expect(r.status).toBe(0);
    await session.settle(500);
    const exec = execOf(session.events, r.pid, "grep");
    expect(exec).toBeDefined();
    expect(exec!.capabilities).toEqual(printedSets(r.stdout));
    // Root holds what its bounding set allows: at least CAP_CHOWN, never nothing.
    expect(capabilityNames(exec!.capabilities!.effective)).toContain("CAP_CHOWN");
  });

  it(`an unprivileged program given one ambient capability (${held}) shows it in its exec document, and a rule reading it fires; root's grep does not`, async () => {
    expect(holds(bounding, CAPS[held])).toBe(true);
    const r = await run("setpriv", [
      `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", `--inh-caps=+${held}`, `--ambient-caps=+${held}`, "grep", "^Cap", "/proc/self/status",
    ]);
    expect(r.status, r.stderr).toBe(0);
    await session.settle(500);
    const exec = execOf(session.events, r.pid, "grep");
    expect(exec).toBeDefined();
    expect(exec!.task.uid).toBe(NOBODY);
    // Exactly the one capability, as the program itself saw it.
    expect(exec!.capabilities).toEqual(printedSets(r.stdout));
    const name = `CAP_${held.toUpperCase()}`;
    const doc = buildExecEcsDocument(exec!, processes);
    expect(getField(doc, "process.thread.capabilities.effective")).toEqual([name]);
    expect(getField(doc, "process.thread.capabilities.permitted")).toEqual([name]);
    expect(findings.filter((f) => f.rule.id === "test-cap-unprivileged-holder" && f.process.pid === r.pid)).toHaveLength(1);
    // The first test's grep ran as root: no finding for it (user.id is "0").
    expect(findings.filter((f) => f.rule.id === "test-cap-unprivileged-holder" && f.process.pid !== r.pid)).toEqual([]);
  });

  it("CAP_SETUID held by an unprivileged python: its exec, then its setuid(0) (a uid_change with the sets after it), complete the sequence", async () => {
    expect(holds(bounding, CAPS.setuid) && holds(bounding, CAPS.setgid)).toBe(true);
    const r = await run("setpriv", [
      `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", "--inh-caps=+setuid,+setgid", "--ambient-caps=+setuid,+setgid",
      PYTHON, "-c", "import os; os.setuid(0); print(open('/proc/self/status').read())",
    ]);
    expect(r.status, r.stderr).toBe(0);
    await session.settle(500);
    const exec = execOf(session.events, r.pid, "python3");
    expect(exec).toBeDefined();
    expect(capabilityNames(exec!.capabilities!.effective)).toEqual(["CAP_SETGID", "CAP_SETUID"]);
    // setpriv's own changes (to nobody) come before the exec, in the same pid: python's comes after.
    const change = session.events.find((e): e is CredChangeEvent => e.kind === "cred_change" && e.task.pid === r.pid && e.changed.uid && e.timeNs > exec!.timeNs);
    expect(change).toBeDefined();
    expect(change!.ids.euid).toBe(0);
    // The sets after the call, as the process printed them once root.
    expect(change!.capabilities).toEqual(printedSets(r.stdout));
    expect(capabilityNames(change!.capabilities!.permitted)).toEqual(["CAP_SETGID", "CAP_SETUID"]);
    expect(findings.filter((f) => f.rule.id === "test-cap-setid-to-root" && f.process.pid === r.pid)).toHaveLength(1);
  });

  it("a setuid(0) by root (no capability rule's first step) completes nothing", async () => {
    const r = await run(PYTHON, ["-c", `import os; os.setresuid(${NOBODY}, ${NOBODY}, 0); os.setuid(0)`]);
    expect(r.status, r.stderr).toBe(0);
    await session.settle(500);
    expect(session.events.some((e) => e.kind === "cred_change" && e.task.pid === r.pid && e.ids.euid === 0)).toBe(true);
    expect(findings.filter((f) => f.rule.id === "test-cap-setid-to-root" && f.process.pid === r.pid)).toEqual([]);
  });
});
