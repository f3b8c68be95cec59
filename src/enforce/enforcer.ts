/**
 * Enforcement in userspace (docs/enforcement.md): on each finding of a rule whose mode is
 * "on", SIGKILL the processes of the incident that started for it (the shell; the relay that
 * made the connection, where the finding names one), each through a pidfd after checking its
 * start time, so a reused pid is never hit. Dry-run records the same plan as `would_block`.
 * The kernel path (bpf/enforce.bpf.c) stops direct shells before they run; a finding it
 * covers is reported as the kernel's, not killed again.
 *
 * Safety: never pid 1, a kernel thread, the daemon or its ancestors, an allowlisted program,
 * and at most `budget.kills_per_uid` kills per uid per window: past it that uid alone falls
 * back to dry-run, said once per window in a SENSOR-002 finding.
 *
 * Findings gain ECS `event.type` "denied" (when something was stopped), `event.outcome`, and
 * `sockeye.enforcement` (fields documented in docs/enforcement.md).
 */
import type { randomUUID as RandomUUID } from "node:crypto";
import { hostname } from "node:os";
import { ruleFields, type Finding } from "../engine/finding.js";
import type { RuleMeta } from "../engine/rule.js";
import { IMPAIR_DEFENSES_THREAT } from "../engine/sensor-threat.js";
import type { ProcessView } from "../process/process-view.js";
import { START_TICK_NS } from "../host/host-view.js";
import { modeForRule, type EnforceConfig, type EnforceMode } from "./config.js";
import { kernelStop, type KernelStop } from "./kernel-decision.js";

/** node:crypto (OpenSSL's binding and 16 modules, ~0.6 MB of an idle daemon's RSS) loads with the first id. */
const randomUUID: typeof RandomUUID = (options) => process.getBuiltinModule("node:crypto").randomUUID(options);

export const SENSOR_002_META: RuleMeta = {
  id: "SENSOR-002",
  name: "Enforcement fell back to dry-run",
  description:
    "A uid used up its kill budget: findings about its processes are reported as would_block, not acted on, until the window passes. Many kills in a short time are either an attack in progress or decoys spent to switch enforcement off.",
  version: "1",
  severity: "medium",
  riskScore: 47,
  threat: [...IMPAIR_DEFENSES_THREAT],
  source: "builtin",
};

/** What the enforcer needs from the host: a verified kill, and the kernel path's state. */
export interface EnforceHost {
  /** SIGKILL to `pid` only while it is the process started at `startTicks`: "killed", "gone", "reused" or "error: …". */
  killVerified(pid: number, startTicks: number): string;
  /** Whether the kernel path is attached, and which action it takes (exec_denied where the BPF LSM serves it). */
  kernelPath(): { live: boolean; execAction: "exec_denied" | "killed" };
  /** The daemon's pid and its ancestors' (never killed). */
  /** The pids never to kill, each with its start time (USER_HZ ticks) when known. */
  protectedPids(): ReadonlyMap<number, number | undefined>;
  now(): number;
}

export type EnforcementAction = "killed" | "exec_denied" | "would_block" | "none";

export interface EnforcementTarget {
  pid: number;
  role: "shell" | "relay";
  /** What became of it: killed, gone (exited first), reused (another process has the pid), skipped: why, or error. */
  result?: string;
}

export interface EnforcementFields {
  mode: EnforceMode;
  action: EnforcementAction;
  would_block: boolean;
  /** What was (or, in dry-run, would have been) done: killed or exec_denied. */
  planned_action?: "killed" | "exec_denied";
  where?: "kernel" | "userspace";
  /** For the kernel path: at the exec, or at the dup that completed the shape. */
  kernel_hook?: KernelStop;
  pids: number[];
  targets: EnforcementTarget[];
  /** ms from the event the finding is about to the kill (userspace kills only). */
  latency_ms?: number;
  /** Why nothing was (or would be) done: allowlisted, budget, protected. */
  reason?: string;
  allow_label?: string;
}

export interface EnforcerStats {
  killed: number;
  wouldBlock: number;
  kernel: number;
  skipped: Record<string, number>;
  budgetTrips: number;
  /** Userspace kill latencies, ms, the last 1,000. */
  latenciesMs: number[];
}

export class Enforcer {
  private readonly killsByUid = new Map<string, number[]>();
  private readonly trippedUntil = new Map<string, number>();
  private readonly names: ReadonlySet<string>;
  private readonly stats_: EnforcerStats = { killed: 0, wouldBlock: 0, kernel: 0, skipped: {}, budgetTrips: 0, latenciesMs: [] };

  constructor(
    private config: EnforceConfig,
    private readonly host: EnforceHost,
    kernelNames: Iterable<string>,
  ) {
    this.names = new Set(kernelNames);
  }

  /** A reload's new [enforce] table (the kernel path keeps what it was started with). */
  setConfig(config: EnforceConfig): void {
    this.config = config;
  }

  stats(): EnforcerStats {
    return { ...this.stats_, skipped: { ...this.stats_.skipped }, latenciesMs: [...this.stats_.latenciesMs] };
  }

  /** Acts on a batch's findings and annotates them; returns the SENSOR-002 findings of budgets tripped. */
  act(findings: Finding[], processes: ProcessView): Finding[] {
    const extra: Finding[] = [];
    for (const finding of findings) {
      if (finding.rule.id.startsWith("SENSOR-")) continue;
      const mode = modeForRule(this.config, finding.rule.id);
      if (mode === "off") continue;
      const fields = this.decide(finding, mode, processes, extra);
      finding.sockeye["enforcement"] = fields;
      if (fields.action === "killed" || fields.action === "exec_denied") {
        const types = Array.isArray(finding.event["type"]) ? (finding.event["type"] as string[]) : [];
        finding.event["type"] = [...types, "denied"];
        finding.event["outcome"] = "success";
      } else if (mode === "on" && fields.reason !== undefined) {
        finding.event["outcome"] = "failure";
      }
    }
    return extra;
  }

  private decide(finding: Finding, mode: EnforceMode, processes: ProcessView, extra: Finding[]): EnforcementFields {
    const event = finding.sockeye.event;
    const kernel = kernelStop(event, finding.process.name ?? "", this.names);
    const targets = this.targets(finding, processes);
    const pids = targets.map((t) => t.target.pid);
    const kernelPath = this.host.kernelPath();
    const planned = kernel === "exec" && kernelPath.execAction === "exec_denied" ? "exec_denied" : "killed";
    const base = { mode, pids, ...(kernel !== undefined ? { where: "kernel" as const, kernel_hook: kernel } : { where: "userspace" as const }) };

    const allowed = this.allowLabel(finding);
    if (allowed !== undefined) return this.skip(base, targets, "allowlisted", { allow_label: allowed });
    const protectedPids = this.host.protectedPids();
    const usable = targets.filter((t) => {
      const why = unsafe(t.target.pid, t.startTicks, t.info?.ppid, protectedPids);
      if (why !== undefined) t.target.result = `skipped: ${why}`;
      return why === undefined;
    });
    if (usable.length === 0) return this.skip(base, targets, "protected");

    if (mode === "dry-run") {
      this.stats_.wouldBlock++;
      return { ...base, action: "would_block", would_block: true, planned_action: planned, targets: targets.map((t) => t.target) };
    }
    // "on". Where the kernel path covers this record it has acted already; userspace kills as
    // well (start-time verified, so a shell the kernel stopped is just "gone"): the kernel
    // decides by the opened file's name, the thread's comm and dev:inode, this side by the
    // table's name, and a shell that one test missed (a symlinked or renamed interpreter, a
    // prctl'd comm) must not be reported stopped while it runs.
    const kernelCovers = kernel !== undefined && kernelPath.live;
    const uid = finding.user.id;
    if (!kernelCovers && this.overBudget(uid, finding, extra)) {
      this.stats_.wouldBlock++;
      return { ...base, where: "userspace", action: "would_block", would_block: true, planned_action: "killed", reason: "budget", targets: targets.map((t) => t.target) };
    }
    let killed = 0;
    for (const t of usable) {
      t.target.result = t.startTicks === undefined ? "gone" : this.host.killVerified(t.target.pid, t.startTicks);
      if (t.target.result === "killed") killed++;
    }
    const latency = Math.round((this.host.now() - Date.parse(finding["@timestamp"])) * 10) / 10;
    if (killed === 0) {
      const failed = usable.some((t) => t.target.result?.startsWith("error") === true);
      if (kernelCovers && !failed) {
        this.stats_.kernel++;
        return { ...base, action: planned, would_block: true, planned_action: planned, targets: targets.map((t) => t.target) };
      }
      return { ...base, where: "userspace", action: "none", would_block: true, planned_action: "killed", reason: failed ? "error" : "gone", targets: targets.map((t) => t.target) };
    }
    this.stats_.killed += killed;
    this.recordKill(uid);
    this.stats_.latenciesMs.push(latency);
    if (this.stats_.latenciesMs.length > 1000) this.stats_.latenciesMs.shift();
    return {
      ...base, where: "userspace", action: "killed", would_block: true, planned_action: "killed", latency_ms: latency,
      ...(kernelCovers ? { reason: "kernel_missed" } : {}), targets: targets.map((t) => t.target),
    };
  }

  private skip(base: Omit<EnforcementFields, "action" | "would_block" | "targets">, targets: Candidate[], reason: string, more: Partial<EnforcementFields> = {}): EnforcementFields {
    this.stats_.skipped[reason] = (this.stats_.skipped[reason] ?? 0) + 1;
    return { ...base, action: "none", would_block: false, reason, ...more, targets: targets.map((t) => t.target) };
  }

  /** The shell, and the relay program when it made the connection itself (part of the incident). */
  private targets(finding: Finding, processes: ProcessView): Candidate[] {
    const out: Candidate[] = [];
    const shellTicks = ticksOfEntityId(finding.process.entity_id);
    const shellInfo = processes.get(finding.process.pid);
    out.push({
      target: { pid: finding.process.pid, role: "shell" },
      startTicks: shellTicks ?? (shellInfo !== undefined ? Math.floor(shellInfo.startNs / START_TICK_NS) : undefined),
      info: shellInfo,
    });
    const relay = finding.sockeye["relay"] as { program?: { pid?: number }; connected_by?: { pid?: number; start_ns?: number } | null } | undefined;
    const relayPid = relay?.program?.pid;
    if (relayPid !== undefined && relayPid !== finding.process.pid && relay?.connected_by?.pid === relayPid) {
      // The start time of the process that made the connection, as the kernel recorded it: the
      // table's entry for the pid may be a later process that took it over.
      const startNs = relay.connected_by.start_ns ?? processes.get(relayPid)?.startNs;
      const info = processes.get(relayPid, startNs);
      out.push({ target: { pid: relayPid, role: "relay" }, startTicks: startNs !== undefined ? Math.floor(startNs / START_TICK_NS) : undefined, info });
    }
    return out;
  }

  /**
   * The allow entry naming the shell, or the relay program of a relay finding (a remote-access
   * agent on the allowlist runs shells for its users: neither it nor its shell is killed).
   */
  private allowLabel(finding: Finding): string | undefined {
    const relay = (finding.sockeye["relay"] as { program?: { name?: string; executable?: string } } | undefined)?.program;
    const programs = [{ name: finding.process.name, executable: finding.process.executable }, ...(relay !== undefined ? [relay] : [])];
    for (const program of programs) {
      for (const entry of this.config.allow) {
        if (entry.executable !== undefined && entry.executable !== program.executable) continue;
        if (entry.name !== undefined && entry.name !== program.name) continue;
        return entry.label;
      }
    }
    return undefined;
  }

  private overBudget(uid: string, finding: Finding, extra: Finding[]): boolean {
    const now = this.host.now();
    const windowMs = this.config.budget.window_s * 1000;
    const until = this.trippedUntil.get(uid);
    if (until !== undefined && now < until) return true;
    const recent = (this.killsByUid.get(uid) ?? []).filter((t) => now - t < windowMs);
    this.killsByUid.set(uid, recent);
    if (recent.length < this.config.budget.kills_per_uid) return false;
    this.trippedUntil.set(uid, now + windowMs);
    this.stats_.budgetTrips++;
    extra.push(budgetFinding(uid, this.config.budget, finding, now));
    return true;
  }

  private recordKill(uid: string): void {
    const list = this.killsByUid.get(uid) ?? [];
    list.push(this.host.now());
    this.killsByUid.set(uid, list);
  }
}

interface Candidate {
  target: EnforcementTarget;
  startTicks: number | undefined;
  info: { ppid: number } | undefined;
}

/** Why a pid must never be killed, or undefined: pid 1, kthreadd and its kernel threads, the daemon and its ancestors. */
function unsafe(pid: number, startTicks: number | undefined, ppid: number | undefined, protectedPids: ReadonlyMap<number, number | undefined>): string | undefined {
  if (pid <= 1) return "init";
  if (pid === 2 || ppid === 2) return "kernel thread";
  if (protectedPids.has(pid)) {
    const protectedTicks = protectedPids.get(pid);
    // Another process on a protected pid (its owner exited) is not protected.
    if (protectedTicks === undefined || startTicks === undefined || protectedTicks === startTicks) return "the daemon or its ancestor";
  }
  return undefined;
}

/** The start time (USER_HZ ticks) an ECS entity id carries ("<boot>-<pid>-<ticks>"). */
export function ticksOfEntityId(entityId: string | undefined): number | undefined {
  const m = entityId !== undefined ? /-(\d+)$/.exec(entityId) : null;
  return m !== null ? Number(m[1]) : undefined;
}

function budgetFinding(uid: string, budget: EnforceConfig["budget"], trigger: Finding, now: number): Finding {
  const at = new Date(now).toISOString();
  return {
    "@timestamp": at,
    event: { kind: "alert", id: randomUUID(), category: ["host"], created: at, module: "sockeye", action: "enforcement_budget_exhausted" },
    rule: ruleFields(SENSOR_002_META),
    process: { ...trigger.process },
    user: { id: uid },
    group: { ...trigger.group },
    host: { name: trigger.host.name || hostname(), os: { type: "linux" } },
    sockeye: {
      event: {},
      cgroup_id: trigger.sockeye.cgroup_id,
      enforcement: { fallback: "dry-run", scope: "uid", uid, kills_per_uid: budget.kills_per_uid, window_s: budget.window_s },
    },
  };
}
