/**
 * /proc/net/tcp{,6} as the relay graph reads it at the start of observation: addresses in the
 * kernel's host-order words, and outbound vs accepted by a listener on the local port.
 */
import { describe, expect, it } from "vitest";
import { classifyTcpSockets, parseTcpTable } from "../../../src/host/tcp-table.js";

const HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
const row = (sl: number, local: string, remote: string, st: string, ino: number) =>
  `  ${sl}: ${local} ${remote} ${st} 00000000:00000000 00:00000000 00000000     0        0 ${ino} 1 0000000000000000 20 4 30 10 -1\n`;

describe("relay: /proc/net/tcp{,6}", () => {
  it("parses IPv4 and IPv6 rows, v4-mapped included", () => {
    const v4 = parseTcpTable(HEADER + row(0, "0100007F:1F90", "0500000A:115C", "01", 4242), "inet");
    expect(v4).toEqual([{ ino: 4242, family: "inet", local: { address: "127.0.0.1", port: 8080 }, remote: { address: "10.0.0.5", port: 4444 }, state: 1 }]);
    const v6 = parseTcpTable(
      HEADER + row(0, "00000000000000000000000001000000:D431", "0000000000000000FFFF00000100007F:115C", "01", 77), "inet6");
    expect(v6[0]!.local).toEqual({ address: "::1", port: 54321 });
    expect(v6[0]!.remote).toEqual({ address: "::ffff:127.0.0.1", port: 4444 });
    expect(parseTcpTable(HEADER + "garbage\n", "inet")).toEqual([]);
  });

  it("a socket on a listened port is accepted, others outbound; listeners, TIME_WAIT and inode 0 are left out", () => {
    const rows = [
      ...parseTcpTable(HEADER +
        row(0, "00000000:0016", "00000000:0000", "0A", 10) + // sshd listening on :22
        row(1, "0100007F:0016", "0100007F:C350", "01", 11) + // an accepted ssh connection
        row(2, "0100007F:C350", "0100007F:0016", "01", 12) + // the ssh client's outbound end
        row(3, "0100007F:C351", "0100007F:115C", "06", 0), // TIME_WAIT
      "inet"),
      // A dual-stack listener's v4 connections sit in tcp6: the port alone decides.
      ...parseTcpTable(HEADER + row(0, "00000000000000000000000000000000:1F90", "00000000000000000000000000000000:0000", "0A", 20) +
        row(1, "0000000000000000FFFF00000100007F:1F90", "0000000000000000FFFF00000100007F:D000", "01", 21), "inet6"),
    ];
    expect(classifyTcpSockets(rows).map((s) => [s.ino, s.origin])).toEqual([[11, "accepted"], [12, "outbound"], [21, "accepted"]]);
  });
});
