/**
 * What the process table knows about a process, and the read-only view of it that rules,
 * findings and the Elastic document get. The table owns these types; `engine/rule.ts`
 * re-exports them as part of the rule API.
 */
import type { ContainerIdentity } from "../host/container.js";
import type { LiveProcessFacts } from "../host/host-view.js";

export type { LiveProcessFacts };

/** Facts about a process, from the process table (seeded from /proc, fed by events). */
export interface ProcessInfo {
  pid: number;
  ppid: number;
  /** ns since boot; pairs with pid to tell reused pids apart. */
  startNs: number;
  /** Absolute path of the executable when known, else the exec filename or "". */
  executable: string;
  /** Base name of the executable (what ECS calls process.name); comm when unknown. */
  name: string;
  args: string[];
  /** Set when argv was cut: by the kernel record's size, or by the process table's bounds. */
  argsTruncated?: boolean;
  uid: number;
  /** Real group id; undefined where unknown (entries made before it was recorded). */
  gid?: number;
  comm: string;
  cgroupId: number;
  /** Set once an exit event was seen; the entry lingers to enrich late findings. */
  exited: boolean;
  /**
   * ECS process.interactive from the exec-time stdio record: stdin and stderr are the
   * process's controlling terminal. Undefined when unknown (seeded from /proc, forked and
   * not yet exec'd, or a capture without stdio records).
   */
  interactive?: boolean;
}

/** Read-only view of the process table that rules get. */
export interface ProcessView {
  /**
   * The entry for `pid`. With `startNs` (an event's task.startNs), only if the entry is that
   * same incarnation of the pid, so a reused pid never lends its facts to another process.
   */
  get(pid: number, startNs?: number): ProcessInfo | undefined;
  /** Parent, grandparent, ... up to `max` entries, nearest first. */
  ancestors(pid: number, max?: number): ProcessInfo[];
  /**
   * The current working directory of a live process on this host (read from /proc when
   * asked), undefined when unknown: exited, not a live host (a replay), or unreadable. With
   * `startNs`, only while /proc still shows the process started then.
   */
  workingDirectory?(pid: number, startNs?: number): string | undefined;
  /**
   * LiveProcessFacts of the process `pid` started at `startNs`, when it is alive on this host
   * and /proc still shows that same incarnation; undefined otherwise (gone, a replay).
   */
  liveFacts?(pid: number, startNs: number): LiveProcessFacts | undefined;
  /**
   * `NAME=value` of the variables among `names` in the exec-time environment of a live
   * process (/proc/<pid>/environ), in the order the process has them; undefined when
   * unknown as for liveFacts. Only the variables asked for are ever returned.
   */
  environment?(pid: number, startNs: number, names: ReadonlySet<string>): string[] | undefined;
  /** The host's boot id (entity ids carry it); "" or absent where unknown. */
  bootId?(): string;
  /** The host's id for Elastic documents (its machine id); "" or absent where unknown. */
  hostId?(): string;
  /** This host's user name for `uid` (never in a replay: names are per host). */
  userName?(uid: number): string | undefined;
  /** This host's group name for `gid`. */
  groupName?(gid: number): string | undefined;
  /** The container a process runs in (from its cgroup), undefined on the host or unknown. */
  container?(cgroupId: number, pid: number): ContainerIdentity | undefined;
}

/** A process's identity as one string: a pid is one process only together with its start time. */
export function processKey(task: { pid: number; startNs: number }): string {
  // Every rule asks for the key of the event's process, and some for its parent's, in turn:
  // the last two keys made are kept, one string per process (whose hash V8 keeps for Map
  // lookups) instead of a newly formatted and hashed string per call.
  const { pid, startNs } = task;
  if (pid === keyed.pid && startNs === keyed.startNs) return keyed.key;
  if (pid === keyedBefore.pid && startNs === keyedBefore.startNs) return keyedBefore.key;
  const oldest = keyedBefore;
  keyedBefore = keyed;
  keyed = oldest;
  keyed.pid = pid;
  keyed.startNs = startNs;
  keyed.key = `${pid}:${startNs}`;
  return keyed.key;
}
let keyed = { pid: -1, startNs: -1, key: "" };
let keyedBefore = { pid: -1, startNs: -1, key: "" };

/**
 * The process table shows this incarnation alive: no exit record seen, not let go by the
 * table's bounds. From the sensor's own records, so a replay answers as the daemon did. Rules
 * keep what a live process holds past their age bounds: an attacker who waits hours between
 * two steps is followed as one who does not.
 */
export function livesInTable(processes: ProcessView, pid: number, startNs: number): boolean {
  if (pid === 0) return false;
  const info = processes.get(pid, startNs);
  return info !== undefined && !info.exited;
}

/** The pid and start time a processKey() names; undefined for any other key (a parent known by pid only, `<ppid>:?`). */
export function parseProcessKey(key: string): { pid: number; startNs: number } | undefined {
  const colon = key.indexOf(":");
  if (colon <= 0 || colon === key.length - 1) return undefined;
  const pid = Number(key.slice(0, colon));
  const startNs = Number(key.slice(colon + 1));
  return Number.isInteger(pid) && Number.isFinite(startNs) ? { pid, startNs } : undefined;
}

/** livesInTable() for a processKey(); any other key is not alive. */
export function keyLivesInTable(processes: ProcessView, key: string): boolean {
  const task = parseProcessKey(key);
  return task !== undefined && livesInTable(processes, task.pid, task.startNs);
}

/**
 * One sweep of a map kept oldest first (insertion order = age order). Each entry older than
 * `oldestMs` whose process `lives` goes to the back as `renewed` (its age starts again: a live
 * process is followed however long it waits); any other old entry is let go (`drop`, a plain
 * delete by default) and counted. Stops at the first young entry, so a sweep costs the old
 * entries only. Returns how many were let go.
 */
export function sweepByAge<K, V>(
  map: Map<K, V>,
  oldestMs: number,
  ageOf: (value: V) => number,
  lives: (key: K, value: V) => boolean,
  renewed: (value: V) => V,
  drop: (key: K) => void = (key) => map.delete(key),
): number {
  let dropped = 0;
  for (const [key, value] of map) {
    if (ageOf(value) >= oldestMs) break;
    if (lives(key, value)) {
      // Renewed entries are young: the loop stops when it reaches them at the back.
      map.delete(key);
      map.set(key, renewed(value));
    } else {
      drop(key);
      dropped++;
    }
  }
  return dropped;
}
