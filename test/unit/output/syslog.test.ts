import { createSocket, type Socket } from "node:dgram";
import { afterEach, describe, expect, it } from "vitest";
import { SyslogOutput } from "sockeye";
import { numberedFindings, reverseShellFinding } from "./fixtures.js";

const sockets: Socket[] = [];
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.close();
});

/** A UDP syslog receiver on 127.0.0.1. */
async function receiver() {
  const messages: string[] = [];
  const socket = createSocket("udp4");
  sockets.push(socket);
  socket.on("message", (message) => messages.push(message.toString()));
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return {
    port: socket.address().port,
    messages,
    until: async (n: number) => {
      while (messages.length < n) await new Promise((resolve) => setTimeout(resolve, 2));
    },
  };
}

describe("syslog output", () => {
  it("sends one RFC 5424 datagram per finding: PRI, header, the finding's JSON", async () => {
    const server = await receiver();
    const output = new SyslogOutput({ port: server.port });
    await output.open();
    const finding = reverseShellFinding();
    output.write([finding]);
    await output.close(1000);
    await server.until(1);
    // authpriv (10) * 8 + err (3, for severity high)
    expect(server.messages[0]).toBe(
      `<83>1 2026-11-22T10:00:00.000Z test-host sockeye ${process.pid} finding - ${JSON.stringify(finding)}`,
    );
    expect(output.stats()).toMatchObject({ name: "syslog", written: 1 });
  });

  it("uses the configured facility and keeps the order of a batch", async () => {
    const server = await receiver();
    const output = new SyslogOutput({ port: server.port, facility: "local3" });
    await output.open();
    output.write(numberedFindings(5));
    await output.close(1000);
    await server.until(5);
    expect(server.messages.map((m) => m.slice(0, 5))).toEqual(Array(5).fill("<155>"));
    expect(server.messages.map((m) => (JSON.parse(m.slice(m.indexOf("{"))) as { process: { pid: number } }).process.pid)).toEqual([
      0, 1, 2, 3, 4,
    ]);
  });

  it("counts datagrams the kernel refuses (nobody listens: ICMP port unreachable) as write errors", async () => {
    const server = await receiver();
    sockets.pop()?.close(); // the port is closed again
    const output = new SyslogOutput({ port: server.port });
    await output.open();
    output.write(numberedFindings(4));
    expect(await output.close(1000)).toEqual({ complete: true, abandoned: 0 });
    const stats = output.stats();
    // Loopback answers the first datagram with ICMP, refused on the next send, and so on.
    expect(stats.dropped.write_error).toBeGreaterThanOrEqual(1);
    expect(stats.written + stats.dropped.write_error).toBe(4);
    expect(stats.lastError).toContain("ECONNREFUSED");
  });

  it("rejects a host name at open: no DNS lookup per message", async () => {
    await expect(new SyslogOutput({ host: "localhost" }).open()).rejects.toThrow(
      'output syslog: host must be an IP address, got "localhost"',
    );
  });
});
