/**
 * The ECS document an Elastic (EQL) rule sees for one exec event (design.md §4): the fields
 * Elastic Defend would give a `process` / `start` event, built from the event and the
 * process table. Fields sockeye does not know are left out (missing), never invented.
 */
import { entityId } from "../../engine/finding.js";
import type { ProcessView } from "../../engine/rule.js";
import type { ExecEvent } from "../../sensor/events.js";

function basename(path: string): string {
  const trimmed = path.replace(/\/+$/, "");
  const slash = trimmed.lastIndexOf("/");
  return slash >= 0 ? trimmed.slice(slash + 1) : trimmed;
}

/**
 * Every Elastic rule reads the same document for one exec: build it once per event, not
 * once per rule (exec is the high-volume stream). Keyed weakly, so it goes with the event.
 */
const documents = new WeakMap<ExecEvent, Record<string, unknown>>();

/** The ECS document of `event`, built on first use and shared by every rule. */
export function execEcsDocument(event: ExecEvent, processes: ProcessView): Record<string, unknown> {
  let doc = documents.get(event);
  if (doc === undefined) {
    doc = buildExecEcsDocument(event, processes);
    documents.set(event, doc);
  }
  return doc;
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

  return {
    event: { category: ["process"], type: ["start"], action: "exec", kind: "event" },
    host: { os: { type: "linux" } },
    process: {
      pid: task.pid,
      entity_id: entityId(task.pid, task.startNs),
      name: basename(event.filename),
      executable: self?.executable || event.filename,
      args: [...event.args],
      args_count: event.args.length,
      command_line: event.args.join(" "),
      parent: parentFields,
    },
    user: { id: String(task.uid) },
    group: { id: String(task.gid) },
  };
}
