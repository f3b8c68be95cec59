/**
 * The ECS connection fields both relay rules put in a finding: the outbound TCP or UDP socket the
 * relay holds, this host the initiator (`source`, when its local end is known) and the remote
 * end the responder (`destination`).
 */
import type { Endpoint } from "../../sensor/events.js";

export interface OutboundConnection {
  family: "inet" | "inet6";
  local: Endpoint | null;
  remote: Endpoint;
  transport?: "udp";
}

export function outboundConnectionFields(s: OutboundConnection): Record<string, unknown> {
  return {
    destination: { ip: s.remote.address, port: s.remote.port },
    ...(s.local !== null ? { source: { ip: s.local.address, port: s.local.port } } : {}),
    network: { direction: "egress", type: s.family === "inet6" ? "ipv6" : "ipv4", transport: s.transport ?? "tcp" },
  };
}
