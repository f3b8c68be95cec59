/**
 * The ECS document an Elastic (EQL) rule sees for one exec event (design.md §4): the fields
 * Elastic Defend would give a `process` / `start` event, built from the event and the
 * process table with the same process builder (and parent policy) as findings. Fields
 * sockeye does not know are left out (missing), never invented.
 */
import type { ProcessView } from "../../engine/rule.js";
import { bootIdOf, ecsParentFields, ecsProcessFields } from "../../process/ecs-process.js";
import { isInteractive } from "../../process/table.js";
import type { AlreadyRunningEvent, ExecEvent, ExitEvent, ForkEvent } from "../../sensor/events.js";
import { ecsHost } from "./ecs-host.js";
import {
  addLiveProcessFields, addParentIdentityFields, ecsUserAndGroup, LIVE_PROCESS_FIELDS, PARENT_IDENTITY_FIELDS, USER_AND_GROUP_FIELDS,
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
 * Every Elastic rule reads the same document for one exec: build it once per event, not
 * once per rule (exec is the high-volume stream). The engine runs every rule on one event
 * before the next, so the last document is the only one worth keeping; it is keyed by the
 * process view too (one per engine: two engines on one sensor see their own tables). One
 * entry, not a WeakMap per event: a WeakMap's upkeep costs about a third of building the
 * document and adds to every garbage collection.
 */
let last: { event: ExecEvent; processes: ProcessView; doc: Record<string, unknown> } | undefined;

/** The ECS document of `event`, built on first use and shared by every rule of an engine. */
export function execEcsDocument(event: ExecEvent, processes: ProcessView): Record<string, unknown> {
  if (last === undefined || last.event !== event || last.processes !== processes) {
    last = { event, processes, doc: buildExecEcsDocument(event, processes) };
  }
  return last.doc;
}

/** Builds the nested ECS document for `event`; `processes` supplies the parent's facts. */
export function buildExecEcsDocument(event: ExecEvent, processes: ProcessView): Record<string, unknown> {
  const { task } = event;
  const self = processes.get(task.pid, task.startNs);
  // The exec event carries the new program's argv, so it is known even when empty; the
  // name is the one definition the rules' process.name prefilter uses too.
  const processFields: Record<string, unknown> = ecsProcessFields(
    task.pid,
    task.startNs,
    execProcessName(event),
    self?.executable || event.filename,
    event.args,
    bootIdOf(processes),
  );
  const parent: Record<string, unknown> = ecsParentFields(task, processes);
  addParentIdentityFields(parent, task, processes);
  processFields["parent"] = parent;
  processFields["real_user"] = { id: String(task.uid) };
  processFields["real_group"] = { id: String(task.gid) };
  if (event.stdio !== null) processFields["interactive"] = isInteractive(event.stdio);
  addLiveProcessFields(processFields, task.pid, task.startNs, self, processes);
  addWorkingDirectory(processFields, task.pid, processes);

  return {
    event: { category: ["process"], type: ["start"], action: "exec", kind: "event" },
    host: ecsHost(bootIdOf(processes)),
    process: processFields,
    // The kernel context has the real ids; Elastic Defend's user.id is the effective one,
    // which equals the real one except across setuid executables (process.user.id has it).
    ...ecsUserAndGroup(task, processes),
  };
}

/** process.working_directory of a live process, read from /proc only when a rule asks (most exec events are decided before that). */
function addWorkingDirectory(processFields: Record<string, unknown>, pid: number, processes: ProcessView): void {
  if (processes.workingDirectory === undefined) return;
  let cwd: string | undefined | null = null;
  Object.defineProperty(processFields, "working_directory", {
    enumerable: true,
    get: () => (cwd === null ? (cwd = processes.workingDirectory?.(pid)) : cwd),
  });
}

type LifecycleEvent = ForkEvent | ExitEvent | AlreadyRunningEvent;

let lastLifecycle: { event: LifecycleEvent; processes: ProcessView; doc: Record<string, unknown> } | undefined;

/**
 * The document of a fork (`process` / `start`, action `fork`: the child, still running its
 * parent's program), of a process's end (`process` / `end`, action `end`, with
 * process.exit_code) or of a process found running at start (`process` / `info`, action
 * `already_running`), as Elastic Defend sends them. The program's facts come from the
 * process table (an already_running event carries its own, read from /proc); built once
 * per event and shared by every rule, like execEcsDocument.
 */
export function lifecycleEcsDocument(event: LifecycleEvent, processes: ProcessView): Record<string, unknown> {
  if (lastLifecycle === undefined || lastLifecycle.event !== event || lastLifecycle.processes !== processes) {
    lastLifecycle = { event, processes, doc: buildLifecycleEcsDocument(event, processes) };
  }
  return lastLifecycle.doc;
}

/** The process.name of `event`'s lifecycle document, without building the document. */
export function lifecycleProcessName(event: LifecycleEvent, processes: ProcessView): string {
  const name = event.kind === "already_running" ? basename(event.executable) : processes.get(event.task.pid, event.task.startNs)?.name;
  return name || event.task.comm;
}

/** Builds the fork, end or already_running document of `event` (see lifecycleEcsDocument). */
export function buildLifecycleEcsDocument(event: LifecycleEvent, processes: ProcessView): Record<string, unknown> {
  const { task } = event;
  const self = processes.get(task.pid, task.startNs);
  const known = event.kind === "already_running" ? { executable: event.executable, args: event.args } : self;
  const processFields: Record<string, unknown> = ecsProcessFields(
    task.pid,
    task.startNs,
    lifecycleProcessName(event, processes),
    known?.executable ?? "",
    known !== undefined && known.args.length > 0 ? known.args : undefined,
    bootIdOf(processes),
  );
  const parent: Record<string, unknown> = ecsParentFields(task, processes);
  addParentIdentityFields(parent, task, processes);
  processFields["parent"] = parent;
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
    addLiveProcessFields(processFields, task.pid, task.startNs, self, processes);
  } else {
    eventFields = { category: ["process"], type: ["info"], action: "already_running", kind: "event" };
    addLiveProcessFields(processFields, task.pid, task.startNs, self, processes);
    addWorkingDirectory(processFields, task.pid, processes);
  }
  return { event: eventFields, host: ecsHost(bootIdOf(processes)), process: processFields, ...ecsUserAndGroup(task, processes) };
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
  ...PROCESS_DOCUMENT_FIELDS, "process.working_directory", "process.interactive", ...LIVE_PROCESS_FIELDS,
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
