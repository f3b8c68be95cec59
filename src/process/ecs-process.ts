/**
 * The ECS `process` fields, built in one place: a finding's process (engine/finding.ts) and
 * the document Elastic rules read for an exec (rules/elastic/ecs-exec.ts) describe a process
 * and its parent the same way. Facts sockeye does not know are left out, never faked.
 */
import { START_TICK_NS } from "../host/host-view.js";
import type { TaskContext } from "../sensor/events.js";
import type { ProcessInfo, ProcessView } from "./process-view.js";

/** ECS fields of one process, the process itself or its parent. */
export type EcsProcessFields = {
  pid: number;
  name?: string;
  executable?: string;
  args?: string[];
  args_count?: number;
  command_line?: string;
  entity_id?: string;
};

/** A process with its thread and parent, as a finding reports it. */
export type EcsProcess = EcsProcessFields & {
  thread: { id: number };
  parent: EcsProcessFields;
};

/**
 * ECS process.entity_id: boot id (so an id names one process across reboots too), pid and
 * start time name one process. The start time is taken in USER_HZ ticks so that a process
 * seeded from /proc (tick precision) and the same process seen in a kernel event (ns) get the
 * same id, which sequences join on; a pid is not reused within one tick.
 */
export function entityId(pid: number, startNs: number, bootId: string): string {
  const ticks = Math.floor(startNs / START_TICK_NS);
  return bootId === "" ? `${pid}-${ticks}` : `${bootId}-${pid}-${ticks}`;
}

/** The boot id entity ids carry, from the view ("" where it has none: a replay). */
export function bootIdOf(processes: ProcessView): string {
  return processes.bootId?.() ?? "";
}

/**
 * The parent-lookup policy every ECS document follows. The parent is the one the kernel
 * names on the event (task.ppid, current at the event, so after any reparenting), not the
 * ppid the table recorded at the last fork or exec. The table only adds facts about that
 * pid, and only from an entry that started no later than the child: a later one is another
 * process that reused the pid. Without such an entry the event's own parent comm is used.
 */
export function parentOf(task: TaskContext, processes: ProcessView): ProcessInfo | undefined {
  const parent = processes.get(task.ppid);
  return parent !== undefined && parent.startNs <= task.startNs ? parent : undefined;
}

/** The parent's ECS fields under parentOf()'s policy. */
export function ecsParentFields(task: TaskContext, processes: ProcessView): EcsProcessFields {
  const parent = parentOf(task, processes);
  if (parent === undefined) return { pid: task.ppid, name: task.parentComm };
  return ecsProcessFields(task.ppid, parent.startNs, parent.name || task.parentComm, parent.executable, tableArgs(parent), bootIdOf(processes));
}

/**
 * A process's ECS fields. An `executable` of "" and `args` undefined mean unknown: they are
 * left out, so a rule sees the field missing rather than empty.
 */
export function ecsProcessFields(
  pid: number,
  startNs: number,
  name: string,
  executable: string,
  args: readonly string[] | undefined,
  bootId: string,
): EcsProcessFields {
  // Assignments, not conditional spreads: the Elastic document is built on the exec stream,
  // and V8 (Node 20) copies spreads on a slow path.
  const fields: EcsProcessFields = { pid, name };
  if (executable !== "") fields.executable = executable;
  if (args !== undefined) {
    fields.args = [...args];
    fields.args_count = args.length;
    fields.command_line = args.join(" ");
  }
  fields.entity_id = entityId(pid, startNs, bootId);
  return fields;
}

/**
 * The process behind an event, as a finding reports it: the table's facts when it knows this
 * incarnation of the pid, else the event's own comm, so a finding about a process that
 * exited before userspace saw it still says who it was.
 */
export function ecsProcess(task: TaskContext, processes: ProcessView): EcsProcess {
  const known = processes.get(task.pid, task.startNs);
  const self =
    known !== undefined
      ? ecsProcessFields(task.pid, task.startNs, known.name || task.comm, known.executable, tableArgs(known), bootIdOf(processes))
      : { pid: task.pid, name: task.comm, entity_id: entityId(task.pid, task.startNs, bootIdOf(processes)) };
  return { ...self, thread: { id: task.tid }, parent: ecsParentFields(task, processes) };
}

/** An empty argv in the table means unknown (a kernel thread, an unreadable cmdline). */
function tableArgs(info: ProcessInfo): readonly string[] | undefined {
  return info.args.length > 0 ? info.args : undefined;
}
