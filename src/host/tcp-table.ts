/**
 * TCP sockets that already exist, parsed from the kernel's tcp and tcp6 tables, and whether
 * each was connected (outbound) or accepted. The relay graph asks for them once, as
 * observation begins: a relay whose connect the sensor never saw is outbound only by this account.
 *
 * Accepted is told by a listening socket on the same local port (any address, either family:
 * a dual-stack listener's v4 connections sit in tcp6). An accepted socket whose listener has
 * closed since (a one-shot `nc -l`) looks outbound; an outbound socket whose ephemeral port
 * equals a listener's looks accepted. The tables are those of the reader's network namespace.
 */
import type { Endpoint } from "../sensor/events.js";
import { formatIPv6 } from "../sensor/decode.js";

export type SocketOrigin = "outbound" | "accepted";

export interface ExistingTcpSocket {
  ino: number;
  family: "inet" | "inet6";
  local: Endpoint;
  remote: Endpoint;
  origin: SocketOrigin;
}

interface Row {
  ino: number;
  family: "inet" | "inet6";
  local: Endpoint;
  remote: Endpoint;
  state: number;
}

/* include/net/tcp_states.h */
const TCP_LISTEN = 0x0a;
const TCP_TIME_WAIT = 0x06;

/**
 * One /proc/net/tcp{,6} table. Addresses are the kernel's 32-bit words printed in host byte
 * order (little-endian on every architecture sockeye builds for); ports are plain hex.
 */
export function parseTcpTable(text: string, family: "inet" | "inet6"): Row[] {
  const rows: Row[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const local = endpoint(f[1]!), remote = endpoint(f[2]!);
    const state = parseInt(f[3]!, 16), ino = Number(f[9]);
    if (local === undefined || remote === undefined || !Number.isInteger(ino)) continue;
    rows.push({ ino, family, local, remote, state });
  }
  return rows;
}

function endpoint(text: string): Endpoint | undefined {
  const m = /^([0-9A-Fa-f]{8}|[0-9A-Fa-f]{32}):([0-9A-Fa-f]{4})$/.exec(text);
  if (m === null) return undefined;
  const hex = m[1]!;
  const bytes = new Uint8Array(hex.length / 2);
  // Each 32-bit word is printed as a host-order (little-endian) number: reverse its bytes.
  for (let word = 0; word < bytes.length / 4; word++) {
    for (let i = 0; i < 4; i++) bytes[word * 4 + i] = parseInt(hex.slice(word * 8 + (3 - i) * 2, word * 8 + (3 - i) * 2 + 2), 16);
  }
  const address = bytes.length === 4 ? bytes.join(".") : formatIPv6(bytes);
  return { address, port: parseInt(m[2]!, 16) };
}

/** Every socket with an inode that is neither listening nor in TIME_WAIT, with its origin. */
export function classifyTcpSockets(rows: Row[]): ExistingTcpSocket[] {
  const listening = new Set(rows.filter((r) => r.state === TCP_LISTEN).map((r) => r.local.port));
  return rows
    .filter((r) => r.state !== TCP_LISTEN && r.state !== TCP_TIME_WAIT && r.ino !== 0)
    .map((r) => ({ ino: r.ino, family: r.family, local: r.local, remote: r.remote, origin: listening.has(r.local.port) ? "accepted" : "outbound" }));
}
