/**
 * The ECS document an Elastic (EQL) rule sees for a credential or session change: a `process`
 * / `change` event with `event.action` `uid_change`, `gid_change` or `session_id_change`, the
 * actions Elastic Defend gives these events on Linux, so rules such as `sequence by
 * process.entity_id [process where event.action == "exec" …] [process where event.action ==
 * "uid_change" and user.id == "0"]` run as written.
 *
 * The ids come from the kernel record, read right after the call: process.user / group are the
 * effective ids, process.real_user / real_group and process.saved_user / saved_group the real
 * and saved ones. The top-level user.id and group.id are the effective ids here (Defend's
 * meaning), unlike exec documents, whose kernel context has the real ids only: a change
 * document is about the identity the process acts with now, and seteuid(0) alone (real uid
 * unchanged) is root all the same. user.Ext.real.id keeps the real id. process.thread.capabilities
 * are the sets after the call (ecs-capabilities.ts).
 */
import type { ProcessView } from "../../engine/rule.js";
import { Deferred } from "../../eql/compile.js";
import type { CredChangeEvent } from "../../sensor/events.js";
import { CAPABILITY_FIELDS, ecsThreadCapabilities } from "./ecs-capabilities.js";
import { ecsHost, hostIdOf } from "./ecs-host.js";
import { addLiveProcessFields, ecsUserAndGroup, knownProcessFields, LIVE_PROCESS_FIELDS, PARENT_IDENTITY_FIELDS } from "./ecs-identity.js";

export const CHANGE_ACTIONS = ["uid_change", "gid_change", "session_id_change"] as const;
export type ChangeAction = (typeof CHANGE_ACTIONS)[number];

/**
 * The action of a change event. One set*id call changes uids or gids, never both; a record
 * that says both (none does today) is a uid change, the one the rules look for first.
 */
export function changeAction(event: CredChangeEvent): ChangeAction {
  if (event.changed.session) return "session_id_change";
  return event.changed.uid || !event.changed.gid ? "uid_change" : "gid_change";
}

/** The process.name of a change document, without building it: the table's name of the program, else comm. */
export function changeProcessName(event: CredChangeEvent, processes: ProcessView): string {
  return processes.get(event.task.pid, event.task.startNs)?.name || event.task.comm;
}

function idWithName(id: number, name: ((id: number) => string | undefined) | undefined): Record<string, unknown> {
  const fields: Record<string, unknown> = { id: String(id) };
  if (name !== undefined) fields["name"] = new Deferred(() => name(id));
  return fields;
}

/** Builds the nested ECS document for `event`; `processes` supplies the program's and parent's facts. */
export function buildChangeEcsDocument(event: CredChangeEvent, processes: ProcessView): Record<string, unknown> {
  const { task, ids } = event;
  const self = processes.get(task.pid, task.startNs);
  const processFields = knownProcessFields(task, changeProcessName(event, processes), self, processes);
  // Session and group leaders, tty and the rest from /proc while the process lives; the ids
  // below are the record's, true at the change, not /proc's of a later moment.
  addLiveProcessFields(processFields, task.pid, task.startNs, task.ppid, self, processes, task.cgroupId);
  const userName = processes.userName === undefined ? undefined : (uid: number) => processes.userName?.(uid);
  const groupName = processes.groupName === undefined ? undefined : (gid: number) => processes.groupName?.(gid);
  processFields["user"] = idWithName(ids.euid, userName);
  processFields["group"] = idWithName(ids.egid, groupName);
  processFields["real_user"] = idWithName(ids.uid, userName);
  processFields["real_group"] = idWithName(ids.gid, groupName);
  processFields["saved_user"] = { id: String(ids.suid) };
  processFields["saved_group"] = { id: String(ids.sgid) };
  // != null: an event made by hand or by code older than the field may leave it out, and
  // reading it would throw in every rule that reads the document.
  if (event.capabilities != null) processFields["thread"] = ecsThreadCapabilities(event.capabilities);
  return {
    event: { category: ["process"], type: ["change"], action: changeAction(event), kind: "event" },
    host: ecsHost(hostIdOf(processes)),
    process: processFields,
    // task.uid and task.gid are the new real ids (read after the call).
    ...ecsUserAndGroup(task, processes, { uid: ids.euid, gid: ids.egid }),
  };
}

/** Every field path a change document can carry (see EXEC_ECS_FIELDS). */
export const CHANGE_ECS_FIELDS: ReadonlySet<string> = new Set([
  "event.category", "event.type", "event.action", "event.kind", "host.id", "host.os.type",
  "process.pid", "process.entity_id", "process.name", "process.executable", "process.args",
  "process.args_count", "process.command_line",
  "process.real_user.id", "process.real_user.name", "process.real_group.id", "process.real_group.name",
  "process.saved_user.id", "process.saved_group.id",
  "process.parent.pid", "process.parent.name", "process.parent.entity_id", "process.parent.executable",
  "process.parent.args", "process.parent.args_count", "process.parent.command_line",
  ...PARENT_IDENTITY_FIELDS,
  ...LIVE_PROCESS_FIELDS,
  ...CAPABILITY_FIELDS,
  "user.id", "user.name", "user.Ext.real.id", "group.id", "group.name", "group.Ext.real.id",
]);

/** The values fields keep on every change document (for the catalog's can-it-fire check); event.action is one of CHANGE_ACTIONS. */
export const CHANGE_ECS_CONSTANTS: Record<string, unknown> = {
  event: { category: ["process"], type: ["change"], kind: "event" },
  host: { os: { type: "linux" } },
};
