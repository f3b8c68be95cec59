/**
 * The ECS document an Elastic (EQL) rule sees for one exec event (docs/design.md §4): the fields
 * Elastic Defend would give a `process` / `start` event, built from the event and the
 * process table with the same process builder (and parent policy) as findings. Fields
 * sockeye does not know are left out (missing), never invented.
 */
import { Deferred } from "../../eql/compile.js";
import type { ProcessView } from "../../engine/rule.js";
import { bootIdOf, ecsParentFields, ecsProcessFields } from "../../process/ecs-process.js";
import { isInteractive } from "../../process/table.js";
import type { AlreadyRunningEvent, ExecEvent, ExitEvent, ForkEvent } from "../../sensor/events.js";
import { CAPABILITY_FIELDS, ecsThreadCapabilities } from "./ecs-capabilities.js";
import { ecsHost, hostIdOf } from "./ecs-host.js";
import {
  addLiveProcessFields, addParentIdentityFields, ecsUserAndGroup, knownProcessFields, LIVE_PROCESS_FIELDS, PARENT_IDENTITY_FIELDS, USER_AND_GROUP_FIELDS,
} from "./ecs-identity.js";

/** ECS process.name of an exec: the base name of the executed file. */
export function execProcessName(event: ExecEvent): string {
  return basename(event.filename);
}

function basename(path: string): string {
  const trimmed = path.replace(/\/+$/, "");
  const slash = trimmed.lastIndexOf("/");
  return slash >= 0 ? trimmed.slice(slash + 1) : trimmed;
}

/**
 * process.name, process.executable and process.args of an exec's document, as the rules'
 * prefilter (program.ts) reads them before the document is built. The exec event carries
 * the new program's argv, so it is known even when empty.
 */
export function execIdentity(event: ExecEvent, processes: ProcessView): { name: string; executable: string; args: readonly string[] } {
  const self = processes.get(event.task.pid, event.task.startNs);
  return { name: execProcessName(event), executable: self?.executable || event.filename, args: event.args };
}

/** Builds the nested ECS document for `event`; `processes` supplies the parent's facts. */
export function buildExecEcsDocument(event: ExecEvent, processes: ProcessView): Record<string, unknown> {
  const { task } = event;
  const self = processes.get(task.pid, task.startNs);
  const { name, executable, args } = execIdentity(event, processes);
  const processFields: Record<string, unknown> = ecsProcessFields(task.pid, task.startNs, name, executable, args, bootIdOf(processes));
  const parent: Record<string, unknown> = ecsParentFields(task, processes);
  addParentIdentityFields(parent, task, processes);
  processFields["parent"] = parent;
  processFields["real_user"] = { id: String(task.uid) };
  processFields["real_group"] = { id: String(task.gid) };
  if (event.stdio !== null) processFields["interactive"] = isInteractive(event.stdio);
  // != null: an event made by hand or by code older than the field may leave it out, and
  // reading it would throw in every rule that reads the document.
  if (event.capabilities != null) processFields["thread"] = ecsThreadCapabilities(event.capabilities);
  addLiveProcessFields(processFields, task.pid, task.startNs, task.ppid, self, processes, task.cgroupId, event.sid);
  addWorkingDirectory(processFields, task.pid, processes);

  return {
    event: { category: ["process"], type: ["start"], action: "exec", kind: "event" },
    host: ecsHost(hostIdOf(processes)),
    process: processFields,
    // The kernel context has the real ids; Elastic Defend's user.id is the effective one,
    // which equals the real one except across setuid executables (process.user.id has it).
    ...ecsUserAndGroup(task, processes),
  };
}

/** process.working_directory of a live process, read from /proc only when a rule asks (most exec events are decided before that). */
function addWorkingDirectory(processFields: Record<string, unknown>, pid: number, processes: ProcessView): void {
  if (processes.workingDirectory === undefined) return;
  processFields["working_directory"] = new Deferred(() => processes.workingDirectory?.(pid));
}

type LifecycleEvent = ForkEvent | ExitEvent | AlreadyRunningEvent;

/** The process.name of `event`'s lifecycle document, without building the document. */
export function lifecycleProcessName(event: LifecycleEvent, processes: ProcessView): string {
  const name = event.kind === "already_running" ? basename(event.executable) : processes.get(event.task.pid, event.task.startNs)?.name;
  return name || event.task.comm;
}

/**
 * The document of a fork (`process` / `start`, action `fork`: the child, still running its
 * parent's program), of a process's end (`process` / `end`, action `end`, with
 * process.exit_code) or of a process found running at start (`process` / `info`, action
 * `already_running`), as Elastic Defend sends them. The program's facts come from the
 * process table (an already_running event carries its own, read from /proc).
 */
export function buildLifecycleEcsDocument(event: LifecycleEvent, processes: ProcessView): Record<string, unknown> {
  const { task } = event;
  const self = processes.get(task.pid, task.startNs);
  const known = event.kind === "already_running" ? { executable: event.executable, args: event.args } : self;
  const processFields = knownProcessFields(task, lifecycleProcessName(event, processes), known, processes);
  processFields["real_user"] = { id: String(task.uid) };
  processFields["real_group"] = { id: String(task.gid) };
  let eventFields: Record<string, unknown>;
  if (event.kind === "exit") {
    eventFields = { category: ["process"], type: ["end"], action: "end", kind: "event" };
    // wait(2) status: the exit code when the process exited; a process killed by a signal
    // has none (its signal is not an ECS process field).
    if ((event.exitCode & 0x7f) === 0) processFields["exit_code"] = (event.exitCode >> 8) & 0xff;
    if (self?.interactive !== undefined) processFields["interactive"] = self.interactive;
  } else if (event.kind === "fork") {
    eventFields = { category: ["process"], type: ["start"], action: "fork", kind: "event" };
    addLiveProcessFields(processFields, task.pid, task.startNs, task.ppid, self, processes, task.cgroupId);
  } else {
    eventFields = { category: ["process"], type: ["info"], action: "already_running", kind: "event" };
    addLiveProcessFields(processFields, task.pid, task.startNs, task.ppid, self, processes, task.cgroupId);
    addWorkingDirectory(processFields, task.pid, processes);
  }
  return { event: eventFields, host: ecsHost(hostIdOf(processes)), process: processFields, ...ecsUserAndGroup(task, processes) };
}

/**
 * Every field path the document above can carry. A rule reading a path outside this list
 * always sees it missing: the rule catalog says so for each rule, so that a rule which can
 * never match (or whose `not` always holds) is visible, not silently blind.
 */
const PROCESS_DOCUMENT_FIELDS = [
  "event.category", "event.type", "event.action", "event.kind", "host.id", "host.os.type",
  "process.pid", "process.entity_id", "process.name", "process.executable", "process.args",
  "process.args_count", "process.command_line",
  "process.real_user.id", "process.real_group.id",
  "process.parent.pid", "process.parent.name", "process.parent.entity_id", "process.parent.executable",
  "process.parent.args", "process.parent.args_count", "process.parent.command_line",
  ...PARENT_IDENTITY_FIELDS,
  ...USER_AND_GROUP_FIELDS,
];

export const EXEC_ECS_FIELDS: ReadonlySet<string> = new Set([
  ...PROCESS_DOCUMENT_FIELDS, "process.working_directory", "process.interactive", ...LIVE_PROCESS_FIELDS, ...CAPABILITY_FIELDS,
]);

/** Every field path a fork document can carry. */
export const FORK_ECS_FIELDS: ReadonlySet<string> = new Set([...PROCESS_DOCUMENT_FIELDS, ...LIVE_PROCESS_FIELDS]);

/** Every field path an already_running document can carry: the process is alive, so /proc tells the rest. */
export const ALREADY_RUNNING_ECS_FIELDS: ReadonlySet<string> = new Set([...PROCESS_DOCUMENT_FIELDS, "process.working_directory", ...LIVE_PROCESS_FIELDS]);

/** Every field path an end document can carry: the process is gone, so nothing from /proc. */
export const END_ECS_FIELDS: ReadonlySet<string> = new Set([...PROCESS_DOCUMENT_FIELDS, "process.exit_code", "process.interactive"]);

/** The values fields keep on every exec document (for the catalog's can-it-fire check). */
export const EXEC_ECS_CONSTANTS: Record<string, unknown> = {
  event: { category: ["process"], type: ["start"], action: "exec", kind: "event" },
  host: { os: { type: "linux" } },
};
export const FORK_ECS_CONSTANTS: Record<string, unknown> = {
  event: { category: ["process"], type: ["start"], action: "fork", kind: "event" },
  host: { os: { type: "linux" } },
};
export const ALREADY_RUNNING_ECS_CONSTANTS: Record<string, unknown> = {
  event: { category: ["process"], type: ["info"], action: "already_running", kind: "event" },
  host: { os: { type: "linux" } },
};
export const END_ECS_CONSTANTS: Record<string, unknown> = {
  event: { category: ["process"], type: ["end"], action: "end", kind: "event" },
  host: { os: { type: "linux" } },
};
