/**
 * Enforcement in userspace (docs/enforcement.md): on each finding of a rule whose mode is
 * "on", SIGKILL the processes of the incident that started for it (the shell; the relay that
 * made the connection, where the finding names one), each through a pidfd after checking its
 * start time, so a reused pid is never hit. Dry-run records the same plan as `would_block`.
 * The kernel path (bpf/enforce.bpf.c) stops direct shells before they run; a finding it
 * covers is reported as the kernel's, not killed again.
 *
 * Safety: never pid 1, a kernel thread, the daemon or its ancestors, an allowlisted program
 * (by executable, name, systemd unit or cgroup path), and at most `budget.kills_per_tree` kills
 * per process tree and `budget.kills_per_uid` per uid per window: past either, that tree or uid
 * alone falls back to dry-run, said once per window in a SENSOR-002 finding.
 *
 * Findings gain ECS `event.type` "denied" (when something was stopped), `event.outcome`, and
 * `sockeye.enforcement` (fields documented in docs/enforcement.md).
 */
import { hostname } from "node:os";
import { newEventId, ruleFields, type Finding } from "../engine/finding.js";
import type { RuleMeta } from "../engine/rule.js";
import { IMPAIR_DEFENSES_THREAT } from "../engine/sensor-threat.js";
import type { ProcessView } from "../process/process-view.js";
import { START_TICK_NS } from "../host/host-view.js";
import { modeForRule, type EnforceConfig, type EnforceMode } from "./config.js";
import { kernelStop, type KernelStop } from "./kernel-decision.js";

export const SENSOR_002_META: RuleMeta = {
  id: "SENSOR-002",
  name: "Enforcement fell back to dry-run",
  description:
    "A uid or a process tree used up its kill budget: findings about its processes are reported as would_block, not acted on, until the window passes. Many kills in a short time are either an attack in progress or decoys spent to switch enforcement off.",
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
  /** The pids never to kill, each with its start time (USER_HZ ticks) when known. */
  protectedPids(): ReadonlyMap<number, number | undefined>;
  now(): number;
  /** The cgroup (v2) path of a process from its cgroup id, else /proc while it lives; absent or undefined where unknown. */
  cgroupPath?(cgroupId: number, pid: number): string | undefined;
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
  /** With an allow entry by unit or cgroup: the cgroup path it matched. */
  allow_cgroup?: string;
  /** With reason "budget": whose budget was spent, the process tree's or the uid's. */
  budget_scope?: "tree" | "uid";
  /** The process tree the kill budget counted this finding against (userspace kills in "on" only). */
  tree?: string;
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
  /** Kill times per budget scope: "uid:<uid>" and "tree:<tree>". */
  private readonly killsByScope = new Map<string, number[]>();
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

    const allowed = this.allowed(finding, processes);
    if (allowed !== undefined) return this.skip(base, targets, "allowlisted", { allow_label: allowed.label, ...(allowed.cgroup !== undefined ? { allow_cgroup: allowed.cgroup } : {}) });
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
    const tree = kernelCovers ? undefined : this.treeOf(finding);
    const spent = kernelCovers ? undefined : this.overBudget(uid, tree, finding, extra);
    if (spent !== undefined) {
      this.stats_.wouldBlock++;
      return {
        ...base, where: "userspace", action: "would_block", would_block: true, planned_action: "killed", reason: "budget", budget_scope: spent,
        ...(tree !== undefined ? { tree } : {}), targets: targets.map((t) => t.target),
      };
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
    this.recordKill(`uid:${uid}`);
    if (tree !== undefined) this.recordKill(`tree:${tree}`);
    this.stats_.latenciesMs.push(latency);
    if (this.stats_.latenciesMs.length > 1000) this.stats_.latenciesMs.shift();
    return {
      ...base, where: "userspace", action: "killed", would_block: true, planned_action: "killed", latency_ms: latency,
      ...(kernelCovers ? { reason: "kernel_missed" } : {}), ...(tree !== undefined ? { tree } : {}), targets: targets.map((t) => t.target),
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
   * agent on the allowlist runs shells for its users: neither it nor its shell is killed). An
   * entry's fields must all match; unit and cgroup are matched against the process's cgroup
   * path (the shell's from the finding's cgroup id, the kernel's record at the event).
   */
  private allowed(finding: Finding, processes: ProcessView): { label: string; cgroup?: string } | undefined {
    if (this.config.allow.length === 0) return undefined;
    const relay = (finding.sockeye["relay"] as { program?: { pid?: number; name?: string; executable?: string } } | undefined)?.program;
    const programs: { name?: string | undefined; executable?: string | undefined; cgroup: () => string | undefined }[] = [
      { name: finding.process.name, executable: finding.process.executable, cgroup: once(() => this.host.cgroupPath?.(finding.sockeye.cgroup_id, finding.process.pid)) },
    ];
    if (relay !== undefined) {
      const info = relay.pid !== undefined ? processes.get(relay.pid) : undefined;
      programs.push({ name: relay.name, executable: relay.executable, cgroup: once(() => (info !== undefined ? this.host.cgroupPath?.(info.cgroupId, info.pid) : undefined)) });
    }
    for (const program of programs) {
      for (const entry of this.config.allow) {
        if (entry.executable !== undefined && entry.executable !== program.executable) continue;
        if (entry.name !== undefined && entry.name !== program.name) continue;
        if (entry.unit === undefined && entry.cgroup === undefined) return { label: entry.label };
        const path = program.cgroup();
        if (path === undefined) continue;
        if (entry.unit !== undefined && outermostUnit(path)?.unit !== entry.unit) continue;
        if (entry.cgroup !== undefined && !cgroupUnder(path, entry.cgroup)) continue;
        return { label: entry.label, cgroup: path };
      }
    }
    return undefined;
  }

  /**
   * The process tree a kill is counted against: the outermost systemd unit of the shell's cgroup
   * (a system service, a login session, a user's manager, a container), else its cgroup path.
   * Not the session or the parent chain: setsid() makes a new session and a double fork
   * re-parents to init, so each decoy would be a tree of its own. A cgroup is left only by
   * writing to a cgroup.procs its owner may write: inside a unit systemd delegated (a user's
   * manager, a container) that owner can make cgroups, but all of them lie below the unit, in the
   * same tree. Undefined (the uid's budget alone) where the path is unknown or the root.
   */
  private treeOf(finding: Finding): string | undefined {
    const path = this.host.cgroupPath?.(finding.sockeye.cgroup_id, finding.process.pid);
    if (path === undefined || path === "/" || path === "") return undefined;
    return outermostUnit(path)?.path ?? path;
  }

  /** Which budget this finding's kill would overspend ("tree" first), tripping it and reporting so; undefined: within both. */
  private overBudget(uid: string, tree: string | undefined, finding: Finding, extra: Finding[]): "tree" | "uid" | undefined {
    // The tree's first: a tree past its budget kills no more, so it spends no more of its uid's.
    if (tree !== undefined && this.spent(`tree:${tree}`, this.config.budget.kills_per_tree, () => budgetFinding({ scope: "tree", tree, uid }, this.config.budget, finding, this.host.now()), extra)) return "tree";
    if (this.spent(`uid:${uid}`, this.config.budget.kills_per_uid, () => budgetFinding({ scope: "uid", uid }, this.config.budget, finding, this.host.now()), extra)) return "uid";
    return undefined;
  }

  private spent(scope: string, budget: number, report: () => Finding, extra: Finding[]): boolean {
    const now = this.host.now();
    const windowMs = this.config.budget.window_s * 1000;
    const until = this.trippedUntil.get(scope);
    if (until !== undefined && now < until) return true;
    const recent = (this.killsByScope.get(scope) ?? []).filter((t) => now - t < windowMs);
    if (recent.length === 0) this.killsByScope.delete(scope);
    else this.killsByScope.set(scope, recent);
    if (recent.length < budget) return false;
    this.trippedUntil.set(scope, now + windowMs);
    this.stats_.budgetTrips++;
    extra.push(report());
    return true;
  }

  private recordKill(scope: string): void {
    const now = this.host.now();
    const list = this.killsByScope.get(scope) ?? [];
    list.push(now);
    this.killsByScope.set(scope, list);
    // One entry per tree ever killed in (containers come and go): past a bound, forget the
    // scopes whose kills and trips are all older than the window.
    if (this.killsByScope.size > MAX_SCOPES) {
      const windowMs = this.config.budget.window_s * 1000;
      for (const [key, times] of this.killsByScope) if (now - times[times.length - 1]! >= windowMs) this.killsByScope.delete(key);
      for (const [key, until] of this.trippedUntil) if (now >= until) this.trippedUntil.delete(key);
    }
  }
}

/** Budget scopes (uids and trees) kept before the old ones are swept. */
const MAX_SCOPES = 4096;

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

/**
 * The systemd unit a cgroup path is in, the outermost `.service` or `.scope` component, and the
 * path down to it. The outermost, not the innermost (relay-graph.ts `serviceUnit`): systemd
 * makes the outermost one; below it (a delegated user manager, a container) the owner names
 * cgroups at will, so an inner name proves nothing.
 */
export function outermostUnit(cgroupPath: string): { unit: string; path: string } | undefined {
  const parts = cgroupPath.split("/");
  for (let i = 0; i < parts.length; i++) {
    if (/\.(service|scope)$/.test(parts[i]!)) return { unit: parts[i]!, path: parts.slice(0, i + 1).join("/") };
  }
  return undefined;
}

/** `path` is `pattern`'s cgroup or below it; `*` in the pattern matches within one component. */
export function cgroupUnder(path: string, pattern: string): boolean {
  const want = pattern.split("/").filter((p) => p !== "");
  const have = path.split("/").filter((p) => p !== "");
  if (want.length > have.length) return false;
  return want.every((w, i) => (w.includes("*") ? globComponent(w).test(have[i]!) : w === have[i]));
}

function globComponent(glob: string): RegExp {
  const literal = (part: string) => part.replace(/[.+?^$()|{}[\]\\]/g, "\\$&");
  return new RegExp("^" + glob.split("*").map(literal).join("[^/]*") + "$");
}

function once<T>(get: () => T): () => T {
  let done = false;
  let value: T;
  return () => {
    if (!done) {
      value = get();
      done = true;
    }
    return value;
  };
}

function budgetFinding(scope: { scope: "uid" | "tree"; uid: string; tree?: string }, budget: EnforceConfig["budget"], trigger: Finding, now: number): Finding {
  const at = new Date(now).toISOString();
  return {
    "@timestamp": at,
    event: { kind: "alert", id: newEventId(), category: ["host"], created: at, module: "sockeye", action: "enforcement_budget_exhausted" },
    rule: ruleFields(SENSOR_002_META),
    process: { ...trigger.process },
    user: { id: scope.uid },
    group: { ...trigger.group },
    host: { name: trigger.host.name || hostname(), os: { type: "linux" } },
    sockeye: {
      event: {},
      cgroup_id: trigger.sockeye.cgroup_id,
      enforcement:
        scope.scope === "tree"
          ? { fallback: "dry-run", scope: "tree", tree: scope.tree, uid: scope.uid, kills_per_tree: budget.kills_per_tree, window_s: budget.window_s }
          : { fallback: "dry-run", scope: "uid", uid: scope.uid, kills_per_uid: budget.kills_per_uid, window_s: budget.window_s },
    },
  };
}
