/**
 * Enforcement's userspace logic on made-up findings and a fake host: modes per rule, the
 * kernel path's decision, dry-run's would_block, verified kills, the allowlist, protected
 * pids and the per-uid budget (docs/enforcement.md).
 */
import { describe, expect, it } from "vitest";
import { enforceConfigSchema, enforceModeOfFlag, modeForRule, type EnforceConfig } from "../../../src/enforce/config.js";
import { cgroupUnder, Enforcer, outermostUnit, ticksOfEntityId, type EnforceHost } from "../../../src/enforce/enforcer.js";
import { kernelStop } from "../../../src/enforce/kernel-decision.js";
import { allowedIdentities, kernelDev, scopedAllowEntries } from "../../../src/enforce/interpreters.js";
import { validateConfig } from "../../../src/config/config.js";
import type { Finding } from "../../../src/engine/finding.js";
import type { ProcessView } from "../../../src/process/process-view.js";

const NAMES = ["sh", "bash", "python3"];
const inet = (origin: string) => ({ kind: "inet", origin });

function finding(over: { rule?: string; pid?: number; uid?: string; event?: Record<string, unknown>; name?: string; executable?: string; relay?: unknown; cgroupId?: number } = {}): Finding {
  const pid = over.pid ?? 4242;
  return {
    "@timestamp": new Date(1_000_000).toISOString(),
    event: { kind: "alert", id: "x", category: ["process"], created: "", module: "sockeye" },
    rule: { id: over.rule ?? "TRC-101", name: "r", description: "d", severity: "high" },
    process: { pid, name: over.name ?? "sh", executable: over.executable ?? "/usr/bin/dash", entity_id: `boot-${pid}-777`, thread: { id: pid }, parent: { pid: 1 } },
    user: { id: over.uid ?? "1000" },
    group: { id: "1000" },
    host: { name: "h", os: { type: "linux" } },
    sockeye: { event: over.event ?? { kind: "exec", filename: "/bin/sh", stdio: [inet("connected"), { kind: "pipe" }, { kind: "pipe" }] }, cgroup_id: over.cgroupId ?? 1, ...(over.relay !== undefined ? { relay: over.relay } : {}) },
  };
}

const NO_PROCESSES: ProcessView = { get: () => undefined, ancestors: () => [] };

function fakeHost(kernelLive = false, result = "killed", cgroups?: Record<number, string>): EnforceHost & { kills: [number, number][] } {
  const kills: [number, number][] = [];
  return {
    kills,
    ...(cgroups !== undefined ? { cgroupPath: (id: number) => cgroups[id] } : {}),
    killVerified: (pid, ticks) => {
      kills.push([pid, ticks]);
      return result;
    },
    kernelPath: () => ({ live: kernelLive, execAction: "killed" }),
    // The daemon (999, started at tick 777) and an ancestor that has since exited (998, tick 5).
    protectedPids: () => new Map([[999, 777], [998, 5]]),
    now: () => 1_000_012,
  };
}

const config = (over: Record<string, unknown>): EnforceConfig => enforceConfigSchema.parse(over);

describe("enforce config", () => {
  it("defaults to off; --enforce is on; a bad mode is one line naming the key", () => {
    expect(validateConfig({}, "defaults").enforce.mode).toBe("off");
    expect(enforceModeOfFlag(true)).toBe("on");
    expect(enforceModeOfFlag("dry-run")).toBe("dry-run");
    expect(() => enforceModeOfFlag("kill")).toThrow(/--enforce must be .*not --enforce=kill/);
    expect(() => validateConfig({ enforce: { mode: "yes" } }, "config x")).toThrow('config x: enforce.mode: must be "off", "dry-run" or "on"');
    expect(() => validateConfig({ enforce: { rules: { "TRC-101": "kill" } } }, "config x")).toThrow(/enforce\.rules\.TRC-101/);
  });

  it("a rule's own mode wins; rules not measured on the benign corpus stop at dry-run unless named", () => {
    const c = config({ mode: "on", rules: { "RELAY-001": "dry-run", "some-elastic-id": "on" } });
    expect(modeForRule(c, "TRC-101")).toBe("on");
    expect(modeForRule(c, "RELAY-001")).toBe("dry-run");
    expect(modeForRule(c, "some-elastic-id")).toBe("on");
    expect(modeForRule(c, "other-elastic-id")).toBe("dry-run");
    expect(modeForRule(config({ mode: "dry-run" }), "other")).toBe("dry-run");
  });
});

describe("the kernel path's decision, from a record", () => {
  const names = new Set(NAMES);
  it("an interpreter exec with stdin and stdout or stderr on connected inet sockets", () => {
    expect(kernelStop({ kind: "exec", filename: "/bin/sh", stdio: [inet("connected"), inet("connected"), { kind: "pipe" }] }, "dash", names)).toBe("exec");
    expect(kernelStop({ kind: "exec", filename: "/bin/sh", stdio: [inet("connected"), { kind: "pipe" }, inet("connected")] }, "dash", names)).toBe("exec");
  });
  it("not an accepted socket (sshd, inetd), not stdin alone, not a program that is no interpreter", () => {
    expect(kernelStop({ kind: "exec", filename: "/bin/sh", stdio: [inet("accepted"), inet("accepted"), inet("accepted")] }, "sh", names)).toBeUndefined();
    expect(kernelStop({ kind: "exec", filename: "/bin/sh", stdio: [inet("connected"), { kind: "pipe" }, { kind: "pipe" }] }, "sh", names)).toBeUndefined();
    expect(kernelStop({ kind: "exec", filename: "/usr/bin/cat", stdio: [inet("connected"), inet("connected"), inet("connected")] }, "cat", names)).toBeUndefined();
  });
  it("not a passive socket (opened from a listener, its accept mark evicted): the kernel never stops one", () => {
    expect(kernelStop({ kind: "exec", filename: "/bin/sh", stdio: [inet("passive"), inet("passive"), { kind: "pipe" }] }, "sh", names)).toBeUndefined();
    expect(kernelStop({ kind: "socket_dup", family: "inet", origin: "passive", socketOnFds: [0, 1] }, "bash", names)).toBeUndefined();
  });
  it("the dup that puts one connected socket on stdin and stdout inside an interpreter", () => {
    const dup = { kind: "socket_dup", family: "inet", origin: "connected", socketOnFds: [0, 1] };
    expect(kernelStop(dup, "bash", names)).toBe("dup");
    expect(kernelStop({ ...dup, socketOnFds: [1] }, "bash", names)).toBeUndefined();
    expect(kernelStop(dup, "curl", names)).toBeUndefined();
  });
  it("device numbers as the kernel keeps them", () => {
    expect(kernelDev(0x10302n)).toBe((0x103 << 20) | 0x02); // major 259, minor 2 (an nvme partition)
    expect(kernelDev(0x0801n)).toBe((8 << 20) | 1);
  });
});

describe("Enforcer", () => {
  it("dry-run: nothing killed, the finding says would_block and what would have been done", () => {
    const host = fakeHost();
    const f = finding();
    new Enforcer(config({ mode: "dry-run" }), host, NAMES).act([f], NO_PROCESSES);
    expect(host.kills).toEqual([]);
    expect(f.sockeye["enforcement"]).toMatchObject({ mode: "dry-run", action: "would_block", would_block: true, planned_action: "killed", where: "userspace", pids: [4242] });
    expect(f.event["type"]).toBeUndefined();
  });

  it("on: kills the shell through its start time and says so (event.type denied, latency)", () => {
    const host = fakeHost();
    const f = finding();
    new Enforcer(config({ mode: "on" }), host, NAMES).act([f], NO_PROCESSES);
    expect(host.kills).toEqual([[4242, 777]]);
    expect(f.event["type"]).toEqual(["denied"]);
    expect(f.event["outcome"]).toBe("success");
    expect(f.sockeye["enforcement"]).toMatchObject({ action: "killed", where: "userspace", latency_ms: 12, targets: [{ pid: 4242, role: "shell", result: "killed" }] });
  });

  it("on: a record the live kernel path covers is the kernel's; dry-run names the kernel too", () => {
    const event = { kind: "exec", filename: "/bin/sh", stdio: [inet("connected"), inet("connected"), inet("connected")] };
    // The kernel got it: the verified kill finds it gone.
    const host = fakeHost(true, "gone");
    const f = finding({ event });
    new Enforcer(config({ mode: "on" }), host, NAMES).act([f], NO_PROCESSES);
    expect(host.kills).toEqual([[4242, 777]]);
    expect(f.sockeye["enforcement"]).toMatchObject({ action: "killed", where: "kernel", kernel_hook: "exec" });
    // The kernel's test missed it (a symlinked or renamed interpreter): userspace kills, and says so.
    const missed = finding({ event });
    new Enforcer(config({ mode: "on" }), fakeHost(true, "killed"), NAMES).act([missed], NO_PROCESSES);
    expect(missed.sockeye["enforcement"]).toMatchObject({ action: "killed", where: "userspace", reason: "kernel_missed" });
    // A kill that failed is an error, never "stopped".
    const failed = finding({ event });
    new Enforcer(config({ mode: "on" }), fakeHost(true, "error: EPERM"), NAMES).act([failed], NO_PROCESSES);
    expect(failed.sockeye["enforcement"]).toMatchObject({ action: "none", reason: "error" });
    const dry = finding({ event });
    new Enforcer(config({ mode: "dry-run" }), fakeHost(false), NAMES).act([dry], NO_PROCESSES);
    expect(dry.sockeye["enforcement"]).toMatchObject({ action: "would_block", where: "kernel", planned_action: "killed" });
  });

  it("kills the relay too when it made the connection itself; never one that only holds it", () => {
    const processes: ProcessView = { get: (pid) => (pid === 500 ? { pid, ppid: 400, startNs: 5e9, executable: "", name: "ncat", args: [], uid: 0, comm: "ncat", cgroupId: 0, exited: false } : undefined), ancestors: () => [] };
    const host = fakeHost();
    new Enforcer(config({ mode: "on", rules: { "RELAY-001": "on" } }), host, NAMES).act(
      [finding({ rule: "RELAY-001", relay: { program: { pid: 500 }, connected_by: { pid: 500 } } })],
      processes,
    );
    expect(host.kills).toEqual([[4242, 777], [500, 500]]);
    const other = fakeHost();
    new Enforcer(config({ mode: "on" }), other, NAMES).act([finding({ rule: "RELAY-001", relay: { program: { pid: 500 }, connected_by: null } })], processes);
    expect(other.kills).toEqual([[4242, 777]]);
    // The relay's pid now names a later process: the kill is checked against the connector's own
    // start time (6e9 ns: 600 ticks), never the table's newer entry (500 ticks).
    const reused = fakeHost();
    new Enforcer(config({ mode: "on", rules: { "RELAY-001": "on" } }), reused, NAMES).act(
      [finding({ rule: "RELAY-001", relay: { program: { pid: 500 }, connected_by: { pid: 500, start_ns: 6e9 } } })],
      processes,
    );
    expect(reused.kills).toEqual([[4242, 777], [500, 600]]);
    // An allowlisted relay program (a remote-access agent): neither it nor its shell is killed.
    const agent = fakeHost();
    const byAgent = finding({ rule: "RELAY-001", relay: { program: { pid: 500, name: "ssm-agent", executable: "/usr/bin/ssm-agent" }, connected_by: { pid: 500 } } });
    new Enforcer(config({ mode: "on", rules: { "RELAY-001": "on" }, allow: [{ label: "ssm", executable: "/usr/bin/ssm-agent" }] }), agent, NAMES).act([byAgent], processes);
    expect(agent.kills).toEqual([]);
    expect(byAgent.sockeye["enforcement"]).toMatchObject({ action: "none", reason: "allowlisted", allow_label: "ssm" });
  });

  it("an allowlisted program and a protected pid are reported, not killed", () => {
    const host = fakeHost();
    const allowed = finding({ executable: "/usr/local/bin/lab-shell" });
    const daemon = finding({ pid: 999 });
    const init = finding({ pid: 1 });
    new Enforcer(config({ mode: "on", allow: [{ label: "lab", executable: "/usr/local/bin/lab-shell" }] }), host, NAMES).act([allowed, daemon, init], NO_PROCESSES);
    expect(host.kills).toEqual([]);
    expect(allowed.sockeye["enforcement"]).toMatchObject({ action: "none", would_block: false, reason: "allowlisted", allow_label: "lab" });
    expect(daemon.sockeye["enforcement"]).toMatchObject({ action: "none", reason: "protected", targets: [{ result: "skipped: the daemon or its ancestor" }] });
    expect(init.sockeye["enforcement"]).toMatchObject({ reason: "protected", targets: [{ result: "skipped: init" }] });
    // A shell on the pid an exited ancestor had is not that ancestor.
    const onFreedPid = finding({ pid: 998 });
    new Enforcer(config({ mode: "on" }), host, NAMES).act([onFreedPid], NO_PROCESSES);
    expect(host.kills).toEqual([[998, 777]]);
  });

  it("a uid past its budget falls back to dry-run alone, once reported in SENSOR-002", () => {
    const host = fakeHost();
    const enforcer = new Enforcer(config({ mode: "on", budget: { kills_per_uid: 2, window_s: 60 } }), host, NAMES);
    const batch = [1, 2, 3, 4].map((i) => finding({ pid: 100 + i, uid: "1000" }));
    const extra = enforcer.act(batch, NO_PROCESSES);
    expect(host.kills.map(([pid]) => pid)).toEqual([101, 102]);
    expect(batch.slice(2).map((f) => (f.sockeye["enforcement"] as { action: string; reason?: string }).reason)).toEqual(["budget", "budget"]);
    expect(extra).toHaveLength(1);
    expect(extra[0]!.rule.id).toBe("SENSOR-002");
    expect(extra[0]!.sockeye["enforcement"]).toMatchObject({ fallback: "dry-run", scope: "uid", uid: "1000" });
    // Another uid still has its own budget.
    enforcer.act([finding({ pid: 200, uid: "1001" })], NO_PROCESSES);
    expect(host.kills.map(([pid]) => pid)).toEqual([101, 102, 200]);
  });

  it("a process tree past its budget falls back alone: another tree of the same uid is still killed", () => {
    // Two trees of root: a container (its scope, whatever cgroups it makes below) and a service.
    const cgroups = {
      11: "/system.slice/docker-abc.scope",
      12: "/system.slice/docker-abc.scope/decoys/a", // made inside the container: the same tree
      13: "/system.slice/docker-abc.scope/decoys/b",
      20: "/system.slice/nginx.service",
    };
    const host = fakeHost(false, "killed", cgroups);
    const enforcer = new Enforcer(config({ mode: "on", budget: { kills_per_uid: 10, kills_per_tree: 2, window_s: 60 } }), host, NAMES);
    const decoys = [11, 12, 13, 12].map((cgroupId, i) => finding({ pid: 100 + i, uid: "0", cgroupId }));
    const extra = enforcer.act(decoys, NO_PROCESSES);
    expect(host.kills.map(([pid]) => pid)).toEqual([100, 101]);
    expect(decoys[0]!.sockeye["enforcement"]).toMatchObject({ action: "killed", tree: "/system.slice/docker-abc.scope" });
    expect(decoys.slice(2).map((f) => f.sockeye["enforcement"])).toMatchObject([
      { action: "would_block", reason: "budget", budget_scope: "tree", tree: "/system.slice/docker-abc.scope" },
      { action: "would_block", reason: "budget", budget_scope: "tree" },
    ]);
    expect(extra).toHaveLength(1);
    expect(extra[0]!.rule.id).toBe("SENSOR-002");
    expect(extra[0]!.sockeye["enforcement"]).toMatchObject({ fallback: "dry-run", scope: "tree", tree: "/system.slice/docker-abc.scope", uid: "0", kills_per_tree: 2 });
    // The same uid in another tree: still killed, its uid budget untouched by the decoys past 2.
    const real = finding({ pid: 300, uid: "0", cgroupId: 20 });
    expect(enforcer.act([real], NO_PROCESSES)).toEqual([]);
    expect(host.kills.map(([pid]) => pid)).toEqual([100, 101, 300]);
    expect(real.sockeye["enforcement"]).toMatchObject({ action: "killed", tree: "/system.slice/nginx.service" });
    expect(enforcer.stats().budgetTrips).toBe(1);
  });

  it("the uid budget still holds over many trees; an unknown cgroup counts against the uid alone", () => {
    const cgroups = { 1: "/", 21: "/user.slice/user-1000.slice/session-1.scope", 22: "/user.slice/user-1000.slice/session-2.scope", 23: "/user.slice/user-1000.slice/session-3.scope" };
    const host = fakeHost(false, "killed", cgroups);
    const enforcer = new Enforcer(config({ mode: "on", budget: { kills_per_uid: 3, kills_per_tree: 2, window_s: 60 } }), host, NAMES);
    const batch = [21, 22, 23].map((cgroupId, i) => finding({ pid: 100 + i, uid: "1000", cgroupId }));
    const rootCgroup = finding({ pid: 200, uid: "1000", cgroupId: 1 });
    const extra = enforcer.act([...batch, rootCgroup], NO_PROCESSES);
    expect(host.kills.map(([pid]) => pid)).toEqual([100, 101, 102]);
    expect(rootCgroup.sockeye["enforcement"]).toMatchObject({ reason: "budget", budget_scope: "uid" });
    expect((rootCgroup.sockeye["enforcement"] as { tree?: string }).tree).toBeUndefined();
    expect(extra.map((f) => (f.sockeye["enforcement"] as { scope: string }).scope)).toEqual(["uid"]);
    // Without cgroup paths (a host view that has none): the uid's budget alone, as before.
    const plain = fakeHost();
    const noTree = new Enforcer(config({ mode: "on", budget: { kills_per_uid: 3, kills_per_tree: 1, window_s: 60 } }), plain, NAMES);
    noTree.act([1, 2, 3].map((i) => finding({ pid: i + 10 })), NO_PROCESSES);
    expect(plain.kills).toHaveLength(3);
  });

  it("an allow entry by systemd unit or cgroup spares what runs there, reported with the path it matched", () => {
    const cgroups = {
      30: "/system.slice/gitlab-runner.service",
      31: "/system.slice/gitlab-runner.service/job-7",
      32: "/system.slice/nginx.service",
      // A user names a scope of their own manager after the allowed unit: not the unit.
      33: "/user.slice/user-1000.slice/user@1000.service/app.slice/gitlab-runner.service",
      40: "/machine.slice/machine-lab1.scope/payload",
      41: "/machine.slice/machine-prod.scope",
    };
    const allow = [
      { label: "ci", unit: "gitlab-runner.service" },
      { label: "lab vms", cgroup: "/machine.slice/machine-lab*.scope" },
      { label: "nginx bash only", unit: "nginx.service", name: "bash" },
    ];
    const host = fakeHost(false, "killed", cgroups);
    const enforcer = new Enforcer(config({ mode: "on", allow }), host, NAMES);
    const [ci, ciJob, nginxSh, forged, lab, prod] = [30, 31, 32, 33, 40, 41].map((cgroupId) => finding({ pid: 500 + cgroupId, cgroupId }));
    enforcer.act([ci!, ciJob!, nginxSh!, forged!, lab!, prod!], NO_PROCESSES);
    expect(ci!.sockeye["enforcement"]).toMatchObject({ action: "none", would_block: false, reason: "allowlisted", allow_label: "ci", allow_cgroup: "/system.slice/gitlab-runner.service" });
    expect(ciJob!.sockeye["enforcement"]).toMatchObject({ reason: "allowlisted", allow_label: "ci", allow_cgroup: "/system.slice/gitlab-runner.service/job-7" });
    expect(lab!.sockeye["enforcement"]).toMatchObject({ reason: "allowlisted", allow_label: "lab vms", allow_cgroup: "/machine.slice/machine-lab1.scope/payload" });
    // sh in nginx.service (the entry wants bash), the forged unit name and another machine: killed.
    expect(host.kills.map(([pid]) => pid)).toEqual([532, 533, 541]);
    expect(nginxSh!.sockeye["enforcement"]).toMatchObject({ action: "killed" });
    // The relay program's cgroup counts as the shell's does.
    const processes: ProcessView = { get: (pid) => (pid === 600 ? { pid, ppid: 1, startNs: 6e9, executable: "/usr/bin/socat", name: "socat", args: [], uid: 0, comm: "socat", cgroupId: 30, exited: false } : undefined), ancestors: () => [] };
    const viaRelay = finding({ rule: "RELAY-001", pid: 601, cgroupId: 32, relay: { program: { pid: 600, name: "socat", executable: "/usr/bin/socat" }, connected_by: { pid: 600 } } });
    new Enforcer(config({ mode: "on", rules: { "RELAY-001": "on" }, allow }), host, NAMES).act([viaRelay], processes);
    expect(viaRelay.sockeye["enforcement"]).toMatchObject({ reason: "allowlisted", allow_label: "ci" });
    expect(host.kills.map(([pid]) => pid)).toEqual([532, 533, 541]);
    // With no cgroup path known, a unit entry matches nothing: the shell is killed.
    const blind = fakeHost();
    new Enforcer(config({ mode: "on", allow }), blind, NAMES).act([finding({ cgroupId: 30 })], NO_PROCESSES);
    expect(blind.kills).toHaveLength(1);
  });

  it("unit and cgroup entries: checked as config, matched by component, kept from the kernel's lists", () => {
    expect(() => validateConfig({ enforce: { allow: [{ label: "x", unit: "gitlab-runner" }] } }, "config x")).toThrow(/config x: enforce\.allow\.0\.unit: must name a \.service or \.scope unit/);
    expect(() => validateConfig({ enforce: { allow: [{ label: "x", cgroup: "system.slice" }] } }, "config x")).toThrow(/enforce\.allow\.0\.cgroup: must be a cgroup path/);
    expect(() => validateConfig({ enforce: { allow: [{ label: "x" }] } }, "config x")).toThrow(/needs executable, name, unit or cgroup/);
    expect(validateConfig({}, "defaults").enforce.budget).toMatchObject({ kills_per_uid: 10, kills_per_tree: 5 });
    expect(cgroupUnder("/system.slice/a.service/x", "/system.slice/a.service")).toBe(true);
    expect(cgroupUnder("/system.slice/a.service2", "/system.slice/a.service")).toBe(false);
    expect(cgroupUnder("/system.slice", "/system.slice/a.service")).toBe(false);
    expect(cgroupUnder("/kubepods/pod1/c", "/kubepods/*/c")).toBe(true);
    expect(cgroupUnder("/kubepods/pod1/c", "/kube*")).toBe(true);
    expect(cgroupUnder("/a.b/c", "/a*b/c")).toBe(true);
    expect(cgroupUnder("/axb/c", "/a.b")).toBe(false);
    expect(outermostUnit("/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope")).toEqual({ unit: "user@1000.service", path: "/user.slice/user-1000.slice/user@1000.service" });
    expect(outermostUnit("/kubepods/besteffort/pod1/c1")).toBeUndefined();
    const allow = [{ label: "u", unit: "x.service", name: "bash" }, { label: "n", name: "perl" }];
    expect(allowedIdentities(allow).names).toEqual(new Set(["perl"]));
    expect(scopedAllowEntries(allow)).toEqual(["u"]);
  });

  it("off leaves findings alone; SENSOR findings are never acted on", () => {
    const host = fakeHost();
    const f = finding();
    new Enforcer(config({ mode: "off" }), host, NAMES).act([f, finding({ rule: "SENSOR-001" })], NO_PROCESSES);
    expect(f.sockeye["enforcement"]).toBeUndefined();
    expect(host.kills).toEqual([]);
  });

  it("reads the start time an entity id carries", () => {
    expect(ticksOfEntityId("b00t-12-3456")).toBe(3456);
    expect(ticksOfEntityId(undefined)).toBeUndefined();
  });
});
