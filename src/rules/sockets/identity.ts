/**
 * Socket identity as the built-in rules share it: the key one reverse-shell incident folds
 * under across TRC-101, RELAY-001 and RELAY-002 (the socket's inode), and what counts as a
 * connect that may have reached its peer.
 */
import type { ConnectEvent } from "../../sensor/events.js";

/**
 * A socket's incident key: `s:<inode>`, or `r:<address>:<port>` for a capture made before the
 * sensor recorded inodes (the endpoint is all there is then).
 */
export type IncidentKey = `s:${number}` | `r:${string}:${number}`;

export const incidentKeyOfSocket = (ino: number): IncidentKey => `s:${ino}`;
export const incidentKeyOfEndpoint = (address: string, port: number): IncidentKey => `r:${address}:${port}`;

/** errno of a non-blocking connect still under way: an attempt that may well succeed. */
export const EINPROGRESS = 115;

/** A connect that succeeded, is under way, or whose outcome the hook ran too early to know (null). */
export function connectMayHaveSucceeded(event: ConnectEvent): boolean {
  return event.result === null || event.result >= 0 || event.result === -EINPROGRESS;
}
