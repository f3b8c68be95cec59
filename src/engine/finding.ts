/**
 * A finding: the nested ECS JSON document of docs/design.md §5, built from a rule's metadata,
 * the triggering event, the process table and the detection's own fields.
 */
import type { ContainerIdentity } from "../host/container.js";
import type { randomUUID as RandomUUID } from "node:crypto";
import { ecsProcess, type EcsProcess, type EcsProcessFields } from "../process/ecs-process.js";
import type { EventKind, SensorEvent, TaskContext } from "../sensor/events.js";
import type { Detection, ProcessView, RuleMeta, Severity, ThreatEntry } from "./rule.js";

/**
 * A new `event.id` (a random UUID) for a finding or a document the sensor makes itself.
 * node:crypto (OpenSSL's binding and 16 modules, ~0.6 MB of an idle daemon's RSS) loads with the
 * first id, not with every daemon.
 */
export const newEventId: typeof RandomUUID = (options) => process.getBuiltinModule("node:crypto").randomUUID(options);

/** The ECS process fields of a finding; built by process/ecs-process.ts for every document. */
export type FindingProcessParent = EcsProcessFields;
export type FindingProcess = EcsProcess;

/** ECS `threat`: each field is the list of values over the rule's MITRE entries. */
export interface FindingThreat {
  framework: "MITRE ATT&CK";
  tactic: { id: string[]; name: string[]; reference: string[] };
  technique?: {
    id: string[];
    name: string[];
    reference: string[];
    subtechnique?: { id: string[]; name: string[]; reference: string[] };
  };
}

export interface Finding {
  "@timestamp": string;
  /** `id`: unique per finding; receivers deduplicate a finding sent twice by it (NATS `Nats-Msg-Id`). */
  event: { kind: "alert"; id: string; category: string[]; created: string; module: "sockeye"; [field: string]: unknown };
  rule: {
    id: string;
    name: string;
    description: string;
    version?: string;
    severity: Severity;
    risk_score?: number;
    [field: string]: unknown;
  };
  threat?: FindingThreat;
  process: FindingProcess;
  user: { id: string };
  group: { id: string };
  host: { name: string; os: { type: "linux" } };
  /** The container the process runs in, when it runs in one. */
  container?: { id: string; runtime: string; name?: string; image?: { name: string } };
  orchestrator?: { type: "kubernetes"; namespace?: string; resource: { type: "pod"; id?: string; name?: string } };
  sockeye: {
    /** The triggering event as the sensor decoded it, minus the task (see process, user). */
    event: Record<string, unknown>;
    cgroup_id: number;
    /** The process's namespaces (inode numbers, as /proc/<pid>/ns/* name them), from the kernel's record. */
    namespaces?: { pid?: number; mnt?: number; net?: number };
    /** The process's pid inside its own pid namespace, when it differs from process.pid (a container's). */
    ns_pid?: number;
    /** Present when later detections with this key fold into this finding. */
    fold_key?: string;
    [field: string]: unknown;
  };
  /** Rule-specific fields (destination, finding, network, ...). */
  [field: string]: unknown;
}

export interface FindingInput {
  meta: RuleMeta;
  event: SensorEvent;
  detection: Detection;
  processes: ProcessView;
  hostName: string;
  createdMs: number;
  /** Set when folding is on and the detection has a fold key. */
  foldKey?: string;
}

const CATEGORY_BY_KIND: Record<EventKind, string[]> = {
  connect: ["network"],
  socket_dup: ["network"],
  exec: ["process"],
  fork: ["process"],
  exit: ["process"],
  outbound: ["network"],
  accept: ["network"],
  cred_change: ["process"],
  already_running: ["process"],
};

export function buildFinding(input: FindingInput): Finding {
  const { meta, event, detection } = input;
  const { task, ...eventFields } = event;
  const base: Finding = {
    "@timestamp": new Date(event.timeMs).toISOString(),
    event: {
      kind: "alert",
      // Random rather than derived from the event: one event can raise several findings of one rule.
      id: newEventId(),
      category: [...CATEGORY_BY_KIND[event.kind]],
      created: new Date(input.createdMs).toISOString(),
      module: "sockeye",
    },
    rule: ruleFields(meta),
    ...(meta.threat.length > 0 ? { threat: ecsThreat(meta.threat) } : {}),
    process: ecsProcess(task, input.processes),
    // ECS keeps ids as keywords, not numbers.
    user: { id: String(task.uid) },
    group: { id: String(task.gid) },
    host: { name: input.hostName, os: { type: "linux" } },
    sockeye: {
      event: eventFields,
      cgroup_id: task.cgroupId,
      ...namespaceFields(task),
      ...(input.foldKey !== undefined ? { fold_key: input.foldKey } : {}),
    },
  };
  const container = input.processes.container?.(task.cgroupId, task.pid);
  if (container !== undefined) Object.assign(base, ecsContainer(container));
  return detection.fields === undefined ? base : (deepMerge(base, detection.fields) as Finding);
}

/** `sockeye.namespaces` and `sockeye.ns_pid`, from what the kernel's record knew. */
function namespaceFields(task: TaskContext): Pick<Finding["sockeye"], "namespaces" | "ns_pid"> {
  const namespaces = {
    ...(task.pidNs !== undefined ? { pid: task.pidNs } : {}),
    ...(task.mntNs !== undefined ? { mnt: task.mntNs } : {}),
    ...(task.netNs !== undefined ? { net: task.netNs } : {}),
  };
  return {
    ...(Object.keys(namespaces).length > 0 ? { namespaces } : {}),
    ...(task.nsPid !== undefined && task.nsPid !== task.pid ? { ns_pid: task.nsPid } : {}),
  };
}

/**
 * ECS `container` (the runtime's full id: a cut id makes joins across tools ambiguous; the
 * name and image its runtime wrote down) and, for a pod's container, `orchestrator` with the
 * pod's UID, name and namespace.
 */
export function ecsContainer(container: ContainerIdentity): Pick<Finding, "container" | "orchestrator"> {
  const pod = container.podUid !== undefined || container.podName !== undefined;
  return {
    container: {
      id: container.id,
      runtime: container.runtime,
      ...(container.name !== undefined ? { name: container.name } : {}),
      ...(container.image !== undefined ? { image: { name: container.image } } : {}),
    },
    ...(pod
      ? {
          orchestrator: {
            type: "kubernetes",
            ...(container.podNamespace !== undefined ? { namespace: container.podNamespace } : {}),
            resource: {
              type: "pod",
              ...(container.podUid !== undefined ? { id: container.podUid } : {}),
              ...(container.podName !== undefined ? { name: container.podName } : {}),
            },
          },
        }
      : {}),
  };
}

/** ECS `rule` of a finding, from the rule's metadata. */
export function ruleFields(meta: RuleMeta): Finding["rule"] {
  return {
    id: meta.id,
    name: meta.name,
    description: meta.description,
    ...(meta.version !== undefined ? { version: meta.version } : {}),
    severity: meta.severity,
    ...(meta.riskScore !== undefined ? { risk_score: meta.riskScore } : {}),
    ...(meta.tags !== undefined ? { tags: [...meta.tags] } : {}),
    ruleset: meta.source,
  };
}

export function ecsThreat(entries: readonly ThreatEntry[]): FindingThreat {
  const techniques = entries.flatMap((entry) => entry.technique ?? []);
  const subtechniques = techniques.flatMap((technique) => technique.subtechnique ?? []);
  const threat: FindingThreat = {
    framework: "MITRE ATT&CK",
    tactic: listsOf(entries.map((entry) => entry.tactic)),
  };
  if (techniques.length > 0) {
    threat.technique = listsOf(techniques);
    if (subtechniques.length > 0) threat.technique.subtechnique = listsOf(subtechniques);
  }
  return threat;
}

function listsOf(items: readonly { id: string; name: string; reference?: string }[]) {
  return {
    id: items.map((item) => item.id),
    name: items.map((item) => item.name),
    reference: items.flatMap((item) => (item.reference === undefined ? [] : [item.reference])),
  };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Objects merge key by key; anything else (arrays included) from `over` replaces. */
export function deepMerge(into: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...into };
  for (const [key, value] of Object.entries(over)) {
    const current = merged[key];
    merged[key] = isPlainObject(current) && isPlainObject(value) ? deepMerge(current, value) : value;
  }
  return merged;
}
