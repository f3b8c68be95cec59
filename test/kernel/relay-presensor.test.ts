/**
 * Relay shells whose connection is older than the sensor: the relay connects (or accepts)
 * first, the sensor starts, and only then the relay starts its shell. The sensor never saw the
 * connect, so whether the socket is outbound comes from /proc/net/tcp{,6} as observation
 * begins (docs/rules/RELAY-001.md, "Sockets older than the sensor").
 */
import { describe, expect, it } from "vitest";
import type { Finding } from "sockeye";
import net from "node:net";
import { spawn } from "node:child_process";
import { PYTHON, PYTHON_PIPE_RELAY, Session, attachEngine, kernelTier } from "./harness.js";

const tier = kernelTier();

/** Waits for one line "start", then runs `/bin/sh -i` behind two pipes relayed to `s`. */
const RELAY_AFTER_START = `${PYTHON_PIPE_RELAY}
def relay(s):
    buf=b""
    while not buf.endswith(b"\\n"):
        d=s.recv(1)
        if not d: raise SystemExit(1)
        buf+=d
    pipe_relay(s)
`;

/** Starts the python relay with `main` after the shared code; resolves its exit. */
function startPython(main: string): { pid: number; stdout: Promise<string>; exited: Promise<void> } {
  const child = spawn("timeout", ["-s", "KILL", "30", PYTHON, "-c", `import socket,subprocess,threading,os,sys\n${RELAY_AFTER_START}\n${main}`], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  const firstLine = new Promise<string>((resolve) => {
    child.stdout.on("data", () => { if (out.includes("\n")) resolve(out); });
    void exited.then(() => resolve(out));
  });
  return { pid: child.pid!, stdout: firstLine, exited };
}

/** Drives a relayed shell over `s`: start, one command, its answer, a pause, exit. */
async function driveShell(s: net.Socket): Promise<boolean> {
  let got = "";
  s.on("data", (d: Buffer) => (got += d.toString()));
  s.write("start\n");
  s.write("echo RELAY_$((6*7))\n");
  const deadline = Date.now() + 8000;
  while (!got.includes("RELAY_42") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  // The rules read /proc of live processes: keep the shell a moment.
  await new Promise((r) => setTimeout(r, 1500));
  s.end("exit\n");
  return got.includes("RELAY_42");
}

async function openEngine(): Promise<{ session: Session; findings: Finding[] }> {
  const session = await Session.open();
  const findings: Finding[] = [];
  attachEngine(session, findings);
  return { session, findings };
}

describe.runIf(tier.run)("kernel: RELAY-001 on relays whose connection predates the sensor", () => {
  for (const host of ["127.0.0.1", "::1"]) {
    it(`outbound (${host}): connected before the sensor, shell started after it: one RELAY-001 finding`, async () => {
      const conns: net.Socket[] = [];
      const server = net.createServer((s) => { s.on("error", () => {}); conns.push(s); });
      await new Promise<void>((resolve) => server.listen(0, host, resolve));
      const port = (server.address() as net.AddressInfo).port;
      const py = startPython(`s=socket.create_connection(("${host}",${port}))\nprint("connected",flush=True)\nrelay(s)`);
      let opened: Awaited<ReturnType<typeof openEngine>> | undefined;
      try {
        expect(await py.stdout).toContain("connected");
        while (conns.length === 0) await new Promise((r) => setTimeout(r, 20));
        opened = await openEngine();
        expect(await driveShell(conns[0]!)).toBe(true);
        await py.exited;
        await opened.session.settle();
        const found = opened.findings.filter((f) => (f as unknown as { destination?: { port: number } }).destination?.port === port);
        expect(found.map((f) => f.rule.id)).toEqual(["RELAY-001"]);
        const relay = (found[0] as unknown as { sockeye: { relay: { remote: unknown; program: { name: string }; connected_by: unknown } } }).sockeye.relay;
        expect(relay.remote).toEqual({ address: host, port });
        expect(relay.program.name).toMatch(/^python3/); // seeded from /proc: the executable's name (python3.11)
        expect(relay.connected_by).toBeNull();
      } finally {
        opened?.session.close();
        for (const s of conns) s.destroy();
        await new Promise((resolve) => server.close(resolve));
      }
    }, 30_000);
  }

  it("accepted before the sensor (a bind-style relay, the listener still open): not outbound, no finding", async () => {
    const py = startPython(
      `l=socket.socket();l.bind(("127.0.0.1",0));l.listen(1)\nprint(l.getsockname()[1],flush=True)\ns,_=l.accept()\nrelay(s)`,
    );
    let opened: Awaited<ReturnType<typeof openEngine>> | undefined;
    const client = new net.Socket();
    client.on("error", () => {});
    try {
      const port = Number((await py.stdout).trim());
      await new Promise<void>((resolve) => client.connect(port, "127.0.0.1", resolve));
      await new Promise((r) => setTimeout(r, 200)); // accepted in python before the sensor starts
      opened = await openEngine();
      expect(await driveShell(client)).toBe(true);
      await py.exited;
      await opened.session.settle();
      expect(opened.findings.filter((f) => f.rule.id === "RELAY-001")).toEqual([]);
    } finally {
      opened?.session.close();
      client.destroy();
    }
  }, 30_000);
});
