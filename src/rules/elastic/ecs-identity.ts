/**
 * The ECS fields of a process document that the kernel events do not carry: effective user
 * and group (process.user / process.group), names of ids, session and process-group leaders,
 * the controlling terminal, and the environment variables a loaded rule reads. Each is read
 * from /proc (ProcessView.liveFacts / environment) only when a rule reads the field, which is
 * within milliseconds of the event; for a process already gone, or in a replay, the field is
 * missing, never guessed.
 */
import type { LiveProcessFacts, ProcessInfo, ProcessView } from "../../process/process-view.js";
import { Deferred } from "../../eql/compile.js";
import { bootIdOf, ecsParentFields, ecsProcessFields, parentOf } from "../../process/ecs-process.js";
import type { TaskContext } from "../../sensor/events.js";
import { entryLeaderOf } from "./ecs-entry-leader.js";

/**
 * Names of the environment variables the loaded rules compare process.env_vars with. Elastic
 * Defend, too, reports only the variables it is configured to capture; sockeye never reads
 * any other variable of a process.
 */
const envVarNames = new Set<string>();

/** Lets process documents carry `name` in process.env_vars (see envVarNamesOf in rule.ts). */
export function captureEnvVars(names: Iterable<string>): void {
  for (const name of names) envVarNames.add(name);
}

/** Sets `key` on `target` to a value read on first use (compile.ts Deferred). */
function lazy(target: Record<string, unknown>, key: string, read: () => unknown): void {
  target[key] = new Deferred(read);
}

/**
 * `key` as `{ id, name }` of a user or group, undefined (missing) while the id is unknown;
 * `name` only where this host names the id.
 */
function idAndName(
  target: Record<string, unknown>,
  key: string,
  id: () => number | undefined,
  name: (id: number) => string | undefined,
): void {
  lazy(target, key, () => {
    const v = id();
    if (v === undefined) return undefined;
    const n = name(v);
    return n === undefined ? { id: String(v) } : { id: String(v), name: n };
  });
}

/** ECS process.tty from proc(5) tty_nr: major in bits 8-19, minor in bits 0-7 and 20-31. */
export function ttyCharDevice(ttyNr: number): { major: number; minor: number } | undefined {
  if (ttyNr === 0) return undefined;
  return { major: (ttyNr >>> 8) & 0xfff, minor: (ttyNr & 0xff) | ((ttyNr >>> 12) & 0xfff00) };
}

/**
 * Adds the identity fields of the process `pid` (started at `startNs`) to `fields`, its ECS
 * `process` object: process.user / group (effective ids), process.tty, session_leader,
 * group_leader, env_vars and entry_leader. `ppid` is its parent's pid (the event's); `self` is
 * the table's entry for the process, if any; `execSid` the session id its exec record gives.
 */
export function addLiveProcessFields(
  fields: Record<string, unknown>,
  pid: number,
  startNs: number,
  ppid: number,
  self: ProcessInfo | undefined,
  processes: ProcessView,
  cgroupId?: number,
  execSid?: number,
): void {
  let facts: LiveProcessFacts | undefined | null = null;
  const live = (): LiveProcessFacts | undefined => (facts === null ? (facts = processes.liveFacts?.(pid, startNs)) : facts);
  const userName = (uid: number) => processes.userName?.(uid);
  const groupName = (gid: number) => processes.groupName?.(gid);

  idAndName(fields, "user", () => live()?.euid, userName);
  idAndName(fields, "group", () => live()?.egid, groupName);
  lazy(fields, "tty", () => {
    const device = ttyCharDevice(live()?.ttyNr ?? 0);
    return device === undefined ? undefined : { char_device: device };
  });

  // An exec record names the session the program started in, known even once it is gone.
  lazy(fields, "session_leader", () => leaderFields(execSid ?? live()?.sid, pid, startNs, self, processes));
  lazy(fields, "group_leader", () => leaderFields(live()?.pgid, pid, startNs, self, processes));
  lazy(fields, "env_vars", () => processes.environment?.(pid, startNs, envVarNames));
  if (cgroupId !== undefined) addEntryLeaderField(fields, pid, startNs, ppid, self, processes, cgroupId, live, execSid);
}

/**
 * Adds process.entry_leader (read when a rule reads it) to `fields`, the ECS `process` object
 * of the process `pid` started at `startNs` whose parent is `ppid`. `live` reads the process's
 * /proc facts (a document shares one read among its fields); by default they are read here.
 * `execSid` is the session id of an exec record (else the session is read from /proc).
 */
export function addEntryLeaderField(
  fields: Record<string, unknown>,
  pid: number,
  startNs: number,
  ppid: number,
  self: ProcessInfo | undefined,
  processes: ProcessView,
  cgroupId: number,
  live: () => LiveProcessFacts | undefined = () => processes.liveFacts?.(pid, startNs),
  execSid?: number,
): void {
  lazy(fields, "entry_leader", () => entryLeaderFields(pid, startNs, ppid, self, processes, cgroupId, live, execSid));
}

/**
 * process.entry_leader as far as sockeye can tell it truthfully (ecs-entry-leader.ts): the
 * entry leader's pid, entity_id, name, executable, args, same_as_process and entry_meta.type
 * when the evidence establishes it. A process in a container (its cgroup names one,
 * host/container.ts) entered its session through the container: when the evidence names no
 * container runtime's child, it still gets entry_meta.type "container" alone (Elastic's
 * container rules ask exactly this), as a leader found outside the container is not its
 * entry. Otherwise, with the evidence missing, the field is missing (`sockeye rules` says so).
 */
function entryLeaderFields(
  pid: number,
  startNs: number,
  ppid: number,
  self: ProcessInfo | undefined,
  processes: ProcessView,
  cgroupId: number,
  live: () => LiveProcessFacts | undefined,
  execSid: number | undefined,
): Record<string, unknown> | undefined {
  const entry = entryLeaderOf(pid, startNs, ppid, execSid ?? live()?.sid, self, processes, live);
  if (entry?.type !== "container" && processes.container?.(cgroupId, pid) !== undefined) return { entry_meta: { type: "container" } };
  if (entry == null) return undefined;
  const { leader } = entry;
  const fields: Record<string, unknown> = ecsProcessFields(
    leader.pid, leader.startNs, leader.name || leader.comm, leader.executable, leader.args.length > 0 ? leader.args : undefined, bootIdOf(processes),
  );
  fields["same_as_process"] = leader.pid === pid && leader.startNs === startNs;
  fields["entry_meta"] = { type: entry.type };
  return fields;
}

/** What `sockeye rules` notes for a rule reading process.entry_leader.*: which part of it sockeye gives. */
export const ENTRY_LEADER_NOTE =
  "process.entry_leader: pid, entity_id, name, executable, args, same_as_process and entry_meta.type (init, sshd, ssm, container, " +
  "terminal, console, unknown) by Elastic's case table, only where /proc and the process table establish the session's leader, " +
  'its terminal and its parents\' (missing otherwise: for a leader gone, in replays); a process in a container whose leader is not a ' +
  'container runtime\'s child gets entry_meta.type "container" alone; never entry_meta.source.ip, user, group, start';

/**
 * A session or group leader's ECS fields: the process itself when it leads, else the
 * table's entry for that pid if it started no later than the process (a later one reused
 * the pid); with no such entry only the pid is known.
 */
function leaderFields(
  leaderPid: number | undefined,
  pid: number,
  startNs: number,
  self: ProcessInfo | undefined,
  processes: ProcessView,
): Record<string, unknown> | undefined {
  if (leaderPid === undefined || leaderPid <= 0) return undefined;
  const leader = leaderPid === pid ? self : processes.get(leaderPid);
  if (leader === undefined || leader.startNs > startNs) return { pid: leaderPid };
  return ecsProcessFields(leaderPid, leader.startNs, leader.name || leader.comm, leader.executable, leader.args.length > 0 ? leader.args : undefined, bootIdOf(processes));
}

/**
 * process.* of a document about a program already known (not its exec: a fork, an exit, a
 * process found at start, a change of ids): its name, executable and args as `known` says,
 * and its parent with the parent's identity.
 */
export function knownProcessFields(
  task: TaskContext,
  name: string,
  known: { executable: string; args: readonly string[] } | undefined,
  processes: ProcessView,
): Record<string, unknown> {
  const fields: Record<string, unknown> = ecsProcessFields(task.pid, task.startNs, name, known?.executable ?? "", known !== undefined && known.args.length > 0 ? known.args : undefined, bootIdOf(processes));
  const parent: Record<string, unknown> = ecsParentFields(task, processes);
  addParentIdentityFields(parent, task, processes);
  fields["parent"] = parent;
  return fields;
}

/**
 * process.parent.user / group (the parent's effective ids) and working_directory, from /proc
 * while it lives, and process.parent.interactive (from the parent's exec-time stdio record in
 * the table).
 */
export function addParentIdentityFields(parentFields: Record<string, unknown>, task: TaskContext, processes: ProcessView): void {
  const parent = parentOf(task, processes);
  if (parent === undefined) return;
  let facts: LiveProcessFacts | undefined | null = null;
  const live = (): LiveProcessFacts | undefined => (facts === null ? (facts = processes.liveFacts?.(parent.pid, parent.startNs)) : facts);
  idAndName(parentFields, "user", () => live()?.euid, (uid) => processes.userName?.(uid));
  idAndName(parentFields, "group", () => live()?.egid, (gid) => processes.groupName?.(gid));
  if (processes.workingDirectory !== undefined) lazy(parentFields, "working_directory", () => processes.workingDirectory?.(parent.pid, parent.startNs));
  if (parent.interactive !== undefined) parentFields["interactive"] = parent.interactive;
}

/**
 * The top-level `user` and `group` of a document with their names, and Elastic Defend's
 * `user.Ext.real.id` / `group.Ext.real.id`, which name the real ids (the task context's)
 * explicitly. `acting` is the ids user.id and group.id carry: the real ones by default, as
 * sockeye has always given them where the kernel context has only those; a change document
 * gives the effective ones its record read.
 */
export function ecsUserAndGroup(
  task: TaskContext,
  processes: ProcessView,
  acting: { uid: number; gid: number } = task,
): { user: Record<string, unknown>; group: Record<string, unknown> } {
  const user: Record<string, unknown> = { id: String(acting.uid), Ext: { real: { id: String(task.uid) } } };
  lazy(user, "name", () => processes.userName?.(acting.uid));
  const group: Record<string, unknown> = { id: String(acting.gid), Ext: { real: { id: String(task.gid) } } };
  lazy(group, "name", () => processes.groupName?.(acting.gid));
  return { user, group };
}

/** The process.entry_leader paths addEntryLeaderField() can fill. */
export const ENTRY_LEADER_FIELDS = [
  ...["pid", "name", "executable", "args", "args_count", "command_line", "entity_id", "same_as_process", "entry_meta.type"].map((f) => `process.entry_leader.${f}`),
];

/** Field paths the helpers above can fill, for the catalog (EXEC_ECS_FIELDS and the like). */
export const LIVE_PROCESS_FIELDS = [
  "process.user.id", "process.user.name", "process.group.id", "process.group.name",
  "process.tty.char_device.major", "process.tty.char_device.minor",
  ...["session_leader", "group_leader"].flatMap((leader) =>
    ["pid", "name", "executable", "args", "args_count", "command_line", "entity_id"].map((f) => `process.${leader}.${f}`),
  ),
  "process.env_vars",
  ...ENTRY_LEADER_FIELDS,
];
export const PARENT_IDENTITY_FIELDS = [
  "process.parent.user.id", "process.parent.user.name", "process.parent.group.id", "process.parent.group.name",
  "process.parent.interactive", "process.parent.working_directory",
];
export const USER_AND_GROUP_FIELDS = ["user.id", "user.name", "user.Ext.real.id", "group.id", "group.name", "group.Ext.real.id"];

const PROC_READ_FIELDS = [
  "process.user", "process.group", "process.tty", "process.session_leader", "process.group_leader", "process.env_vars", "process.entry_leader",
  "process.working_directory", "process.parent.user", "process.parent.group", "process.parent.working_directory", "user.name", "group.name",
];

/** Whether `path` is read from /proc when a rule reads it (a Deferred value): a rule's other conditions go first. */
export function isProcReadField(path: string): boolean {
  return PROC_READ_FIELDS.some((field) => path === field || path.startsWith(`${field}.`));
}
