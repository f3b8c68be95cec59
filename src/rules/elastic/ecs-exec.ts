/**
 * The ECS document an Elastic (EQL) rule sees for one exec event (design.md §4): the fields
 * Elastic Defend would give a `process` / `start` event, built from the event and the
 * process table. Fields sockeye does not know are left out (missing), never invented.
 */
import { entityId } from "../../engine/finding.js";
import type { ProcessView } from "../../engine/rule.js";
import type { ExecEvent } from "../../sensor/events.js";

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
 * entry, not a WeakMap per event: the WeakMaps' upkeep was a third of the document's cost
 * and added to every garbage collection (bench/README.md).
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
  const parent = processes.get(task.ppid);

  const parentFields: Record<string, unknown> = {
    pid: task.ppid,
    name: parent?.name || task.parentComm,
  };
  if (parent !== undefined) {
    parentFields["entity_id"] = entityId(parent.pid, parent.startNs);
    if (parent.executable !== "") parentFields["executable"] = parent.executable;
    if (parent.args.length > 0) {
      parentFields["args"] = [...parent.args];
      parentFields["args_count"] = parent.args.length;
      parentFields["command_line"] = parent.args.join(" ");
    }
  }

  const processFields: Record<string, unknown> = {
    pid: task.pid,
    entity_id: entityId(task.pid, task.startNs),
    name: execProcessName(event), // the one definition the rules' process.name prefilter uses too
    executable: self?.executable || event.filename,
    args: [...event.args],
    args_count: event.args.length,
    command_line: event.args.join(" "),
    parent: parentFields,
    real_user: { id: String(task.uid) },
    real_group: { id: String(task.gid) },
  };
  const workingDirectory = processes.workingDirectory;
  if (workingDirectory !== undefined) {
    // Read from /proc only when a rule asks (most exec events are decided before that).
    let cwd: string | undefined | null = null;
    Object.defineProperty(processFields, "working_directory", {
      enumerable: true,
      get: () => (cwd === null ? (cwd = workingDirectory.call(processes, task.pid)) : cwd),
    });
  }

  return {
    event: { category: ["process"], type: ["start"], action: "exec", kind: "event" },
    host: { os: { type: "linux" } },
    process: processFields,
    // The kernel context has the real ids; Elastic Defend's user.id is the effective one,
    // which equals the real one except across setuid executables.
    user: { id: String(task.uid) },
    group: { id: String(task.gid) },
  };
}

/**
 * Every field path the document above can carry. A rule reading a path outside this list
 * always sees it missing: the rule catalog says so for each rule, so that a rule which can
 * never match (or whose `not` always holds) is visible, not silently blind.
 */
export const EXEC_ECS_FIELDS: ReadonlySet<string> = new Set([
  "event.category", "event.type", "event.action", "event.kind", "host.os.type",
  "process.pid", "process.entity_id", "process.name", "process.executable", "process.args",
  "process.args_count", "process.command_line", "process.working_directory",
  "process.real_user.id", "process.real_group.id",
  "process.parent.pid", "process.parent.name", "process.parent.entity_id", "process.parent.executable",
  "process.parent.args", "process.parent.args_count", "process.parent.command_line",
  "user.id", "group.id",
]);
