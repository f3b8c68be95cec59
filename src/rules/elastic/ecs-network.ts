/**
 * The ECS document an Elastic (EQL) rule sees for one outbound connect: a `network` event
 * in the shape Elastic Defend sends (`event.action: connection_attempted`, `event.type:
 * start`, `destination.*`, `network.*`, the process that connected), so network rules and
 * sequences that join a connect to a later exec (`[network where …] by process.entity_id
 * [process where …] by process.parent.entity_id`) run as written. Only inet and inet6
 * connects make one: Defend reports no network event for unix sockets.
 *
 * Any fd's connect is taken; which fds the kernel reports is the sensor's business.
 */
import type { ProcessView } from "../../engine/rule.js";
import { bootIdOf, ecsParentFields, entityId } from "../../process/ecs-process.js";
import type { ConnectEvent } from "../../sensor/events.js";
import { ecsHost, hostIdOf } from "./ecs-host.js";
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

/** Builds the nested ECS network document for an inet/inet6 connect. */
export function buildConnectEcsDocument(event: ConnectEvent, processes: ProcessView): Record<string, unknown> {
  const { task } = event;
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

/** Every field path the document above can carry (see EXEC_ECS_FIELDS). */
export const NETWORK_ECS_FIELDS: ReadonlySet<string> = new Set([
  "event.category", "event.type", "event.action", "event.kind", "event.outcome", "host.id", "host.os.type",
  "process.pid", "process.entity_id", "process.name", "process.executable", "process.args", "process.args_count",
  "process.parent.pid", "process.parent.name", "process.parent.entity_id", "process.parent.executable",
  "process.parent.args", "process.parent.args_count", "process.parent.command_line",
  "destination.ip", "destination.address", "destination.port", "network.direction", "network.type", "network.transport",
  "user.id", "group.id",
]);

/** The values fields keep on every network document (for the catalog's can-it-fire check). */
export const NETWORK_ECS_CONSTANTS: Record<string, unknown> = {
  event: { category: ["network"], type: ["start"], action: "connection_attempted", kind: "event" },
  host: { os: { type: "linux" } },
  network: { direction: "egress" },
};
