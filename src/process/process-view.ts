/**
 * What the process table knows about a process, and the read-only view of it that rules,
 * findings and the Elastic document get. The table owns these types; `engine/rule.ts`
 * re-exports them as part of the rule API.
 */

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
  uid: number;
  comm: string;
  cgroupId: number;
  /** Set once an exit event was seen; the entry lingers to enrich late findings. */
  exited: boolean;
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
   * asked), undefined when unknown: exited, not a live host (a replay), or unreadable.
   */
  workingDirectory?(pid: number): string | undefined;
}
