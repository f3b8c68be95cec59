/**
 * The ECS documents an Elastic (EQL) rule sees for one outbound connect or one accepted
 * connection: a `network` event in the shape Elastic Defend sends (`event.action:
 * connection_attempted` or `connection_accepted`, `event.type: start`, `source.*` /
 * `destination.*`, `network.*`, the process that connected or accepted), so network rules and
 * sequences that join a connect to a later exec (`[network where …] by process.entity_id
 * [process where …] by process.parent.entity_id`) run as written. Only inet and inet6
 * sockets make one: Defend reports no network event for unix sockets.
 *
 * Any fd's connect is taken; which fds the kernel reports is the sensor's business. Accepts
 * reach rules only when the sensor was asked for them (SensorOptions.acceptRecords).
 */
import type { ProcessView } from "../../engine/rule.js";
import { bootIdOf, ecsParentFields, entityId } from "../../process/ecs-process.js";
import { Deferred } from "../../eql/compile.js";
import type { AcceptEvent, ConnectEvent, TaskContext } from "../../sensor/events.js";
import { ecsHost, hostIdOf } from "./ecs-host.js";
import { addEntryLeaderField, ENTRY_LEADER_FIELDS } from "./ecs-identity.js";
import { EINPROGRESS } from "../sockets/identity.js";

const TRANSPORTS: Record<string, string> = { stream: "tcp", dgram: "udp" };
/** IPPROTO_* numbers for sockets of another type (raw, seqpacket). */
const PROTOCOLS: Record<number, string> = { 1: "icmp", 6: "tcp", 17: "udp", 58: "ipv6-icmp", 132: "sctp" };

/** Whether `event` makes a network document at all. */
export function isNetworkConnect(event: ConnectEvent): boolean {
  return (event.family === "inet" || event.family === "inet6") && event.remote !== null;
}

/**
 * IPv4-mapped IPv6 addresses as IPv4: Elasticsearch's ip type stores them so, and the
 * rules' `cidrmatch(destination.ip, "127.0.0.0/8")` expects it.
 */
export function ecsIp(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped !== null ? mapped[1]! : address;
}

/**
 * process.* of a network document: the process that connected or accepted, as the table knows
 * it, and its working directory and entry leader read from /proc when a rule asks (it runs when the socket call
 * returns, so it is usually still there; missing once it is gone).
 */
function networkProcessFields(task: TaskContext, processes: ProcessView): Record<string, unknown> {
  const known = processes.get(task.pid, task.startNs);
  const processFields: Record<string, unknown> = {
    pid: task.pid,
    entity_id: entityId(task.pid, task.startNs, bootIdOf(processes)),
    name: known?.name || task.comm,
    parent: ecsParentFields(task, processes),
  };
  if (known !== undefined && known.executable !== "") processFields["executable"] = known.executable;
  if (known !== undefined && known.args.length > 0) {
    processFields["args"] = [...known.args];
    processFields["args_count"] = known.args.length;
  }
  if (processes.workingDirectory !== undefined) processFields["working_directory"] = new Deferred(() => processes.workingDirectory?.(task.pid, task.startNs));
  // Read from /proc only when a rule reads it: Elastic's gdb CAP_SYS_PTRACE sequence joins a
  // root connect to a gdb exec by it.
  addEntryLeaderField(processFields, task.pid, task.startNs, task.ppid, known, processes, task.cgroupId);
  return processFields;
}

/** Builds the nested ECS network document for an inet/inet6 connect. */
export function buildConnectEcsDocument(event: ConnectEvent, processes: ProcessView): Record<string, unknown> {
  const { task } = event;
  const processFields = networkProcessFields(task, processes);
  const transport = TRANSPORTS[event.socketType] ?? PROTOCOLS[event.protocol];
  const destination: Record<string, unknown> = {};
  let ipv6 = event.family === "inet6";
  if (event.remote !== null) {
    const ip = ecsIp(event.remote.address);
    // An inet6 socket connecting to a v4-mapped address sends IPv4.
    ipv6 = ip.includes(":");
    destination["ip"] = ip;
    destination["address"] = ip;
    destination["port"] = event.remote.port;
  }
  const network: Record<string, unknown> = { direction: "egress", type: ipv6 ? "ipv6" : "ipv4" };
  if (transport !== undefined) network["transport"] = transport;
  const eventFields: Record<string, unknown> = { category: ["network"], type: ["start"], action: "connection_attempted", kind: "event" };
  // The connect hooks run before or at the call's return: 0 and EINPROGRESS are attempts
  // under way, another error one that failed, null one whose result is not known.
  if (event.result !== null) eventFields["outcome"] = event.result === 0 || event.result === -EINPROGRESS ? "success" : "failure";
  return {
    event: eventFields,
    host: ecsHost(hostIdOf(processes)),
    process: processFields,
    destination,
    network,
    user: { id: String(task.uid) },
    group: { id: String(task.gid) },
  };
}

/**
 * Builds the nested ECS network document for an accepted inet/inet6 connection. As in Elastic
 * Defend's Linux events (its eBPF records name the socket's own end source and its peer
 * destination whichever way the connection was made), destination.* is the client that
 * connected and source.* the server's own end: Elastic's rules over accepted connections ask
 * `destination.ip` for an outside peer. network.direction is "ingress".
 */
export function buildAcceptEcsDocument(event: AcceptEvent, processes: ProcessView): Record<string, unknown> {
  const { task } = event;
  const endpoint = (end: { address: string; port: number }) => {
    const ip = ecsIp(end.address);
    return { ip, address: ip, port: end.port };
  };
  const destination = endpoint(event.remote);
  return {
    event: { category: ["network"], type: ["start"], action: "connection_accepted", kind: "event", outcome: "success" },
    host: ecsHost(hostIdOf(processes)),
    process: networkProcessFields(task, processes),
    source: endpoint(event.local),
    destination,
    // Accept returns stream sockets only: TCP (or SCTP's one-to-one style, rare enough to call TCP).
    network: { direction: "ingress", type: destination.ip.includes(":") ? "ipv6" : "ipv4", transport: "tcp" },
    user: { id: String(task.uid) },
    group: { id: String(task.gid) },
  };
}

const NETWORK_DOCUMENT_FIELDS = [
  "event.category", "event.type", "event.action", "event.kind", "event.outcome", "host.id", "host.os.type",
  "process.pid", "process.entity_id", "process.name", "process.executable", "process.args", "process.args_count",
  "process.working_directory",
  "process.parent.pid", "process.parent.name", "process.parent.entity_id", "process.parent.executable",
  "process.parent.args", "process.parent.args_count", "process.parent.command_line",
  "destination.ip", "destination.address", "destination.port", "network.direction", "network.type", "network.transport",
  "user.id", "group.id",
  ...ENTRY_LEADER_FIELDS,
];

/** Every field path the connect document can carry (see EXEC_ECS_FIELDS). */
export const NETWORK_ECS_FIELDS: ReadonlySet<string> = new Set(NETWORK_DOCUMENT_FIELDS);

/** What `sockeye rules` notes for a rule that reads accepted connections. */
export const ACCEPT_NOTE =
  "connection_accepted: the sensor reports accepted connections only while a loaded rule reads them; sockeye run turns them on for this one";

/** Every field path the accept document can carry. */
export const ACCEPT_ECS_FIELDS: ReadonlySet<string> = new Set([...NETWORK_DOCUMENT_FIELDS, "source.ip", "source.address", "source.port"]);

/** The values fields keep on every accept document. */
export const ACCEPT_ECS_CONSTANTS: Record<string, unknown> = {
  event: { category: ["network"], type: ["start"], action: "connection_accepted", kind: "event", outcome: "success" },
  host: { os: { type: "linux" } },
  network: { direction: "ingress", transport: "tcp" },
};

/** The values fields keep on every network document (for the catalog's can-it-fire check). */
export const NETWORK_ECS_CONSTANTS: Record<string, unknown> = {
  event: { category: ["network"], type: ["start"], action: "connection_attempted", kind: "event" },
  host: { os: { type: "linux" } },
  network: { direction: "egress" },
};
