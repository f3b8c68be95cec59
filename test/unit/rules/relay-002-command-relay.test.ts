/**
 * RELAY-002 over hand-made event sequences shaped like what the kernel reports for gawk's
 * /inet/tcp and popen loops (the kernel tier runs the programs), with who-holds-what given as
 * a fake /proc.
 */
import { describe, expect, it } from "vitest";
import {
  Engine, ProcessTable, builtinRules, createRelay001Rule, createRelay002Rule, type Finding, type Holding,
  type SensorEvent, type StdioFd, } from "sockeye";
import { at, connectedOut, exec, exit, holds, pipe, proc, silentLogger, start, tty, unix } from "../engine/fixtures.js";
import { fakeHost } from "../host/fake-host.js";

const REMOTE = { address: "10.0.0.66", port: 4444 };
const SOCK = 9001;

type Step = SensorEvent | { holds: Record<number, Holding[]> };

function run(steps: Step[]) {
  const host = fakeHost();
  const engine = new Engine({ rules: [createRelay001Rule(), createRelay002Rule()], processes: new ProcessTable({ host }), hostName: "h", now: () => at(0), logger: silentLogger });
  const findings: Finding[] = [];
  for (const step of steps) {
    if ("holds" in step) for (const [pid, held] of Object.entries(step.holds)) host.world.set(Number(pid), held);
    else findings.push(...engine.handle(step));
  }
  return findings;
}

const gawk = proc(200, 100, "gawk");
const cmd = (pid: number, command: string, stdio: [StdioFd, StdioFd, StdioFd], ms: number) =>
  [...start(proc(pid, 200, "sh"), "/bin/sh", ["sh", "-c", command], stdio, ms), exit({ task: proc(pid, 200, "sh"), timeMs: at(ms + 1) })];
const gawkStart = [...start(gawk, "/usr/bin/gawk", ["gawk", "BEGIN { s = \"/inet/tcp/0/10.0.0.66/4444\" … }"], [tty(1), tty(1), tty(1)], 0), connectedOut(gawk, SOCK, 1)];

describe("RELAY-002: command relays", () => {
  it("gawk /inet/tcp running two commands through `sh -c` over pipes it reads: one medium finding, after the second", () => {
    const findings = run([
      ...gawkStart,
      { holds: { 200: [holds(3, `sock:${SOCK}`), holds(4, "pipe:11", "write"), holds(5, "pipe:12", "read")] } },
      ...cmd(201, "id", [pipe(11), pipe(12), tty(1)], 100),
      // The parent closed the first command's pipes after reading them to the end.
      { holds: { 200: [holds(3, `sock:${SOCK}`)] } },
      ...cmd(202, "uname -a", [pipe(21), pipe(22), tty(1)], 900),
      ...cmd(203, "ls", [pipe(31), pipe(32), tty(1)], 1900),
    ]);
    expect(findings.map((f) => f.rule.id)).toEqual(["RELAY-002"]);
    const f = findings[0]! as unknown as Finding & { destination: unknown; sockeye: { command_relay: { program: { name: string }; commands: { args: string[] }[] } } };
    expect(f.rule.severity).toBe("medium");
    expect(f.destination).toEqual({ ip: REMOTE.address, port: REMOTE.port });
    expect(f.sockeye.command_relay.program.name).toBe("gawk");
    expect(f.sockeye.command_relay.commands.map((c) => c.args[2])).toEqual(["id", "uname -a"]);
    expect(f.process.pid).toBe(202);
  });

  it("a socketpair whose peer the parent holds (node's child_process) counts as read", () => {
    const findings = run([
      ...gawkStart,
      { holds: { 200: [holds(3, `sock:${SOCK}`), holds(6, "sock:52")] } },
      ...cmd(201, "id", [unix(51, 52), unix(53, 54), tty(1)], 100),
      ...cmd(202, "id", [unix(61, 62), unix(63, 64), tty(1)], 200),
    ]);
    expect(findings.map((f) => f.rule.id)).toEqual(["RELAY-002"]);
  });

  const quiet: { name: string; steps: Step[] }[] = [
    {
      name: "one command only",
      steps: [...gawkStart, { holds: { 200: [holds(3, `sock:${SOCK}`)] } }, ...cmd(201, "id", [pipe(11), pipe(12), tty(1)], 100)],
    },
    {
      name: "the children inherit the parent's own output pipe (it writes to it, never reads it)",
      steps: [
        ...gawkStart,
        { holds: { 200: [holds(1, "pipe:12", "write"), holds(3, `sock:${SOCK}`)] } },
        ...cmd(201, "id", [tty(1), pipe(12), tty(1)], 100),
        ...cmd(202, "id", [tty(1), pipe(12), tty(1)], 200),
      ],
    },
    {
      name: "the children inherit the parent's journal stream socket",
      steps: [
        ...gawkStart,
        { holds: { 200: [holds(1, "sock:70"), holds(3, `sock:${SOCK}`)] } },
        ...cmd(201, "id", [tty(1), unix(70, 71), tty(1)], 100),
        ...cmd(202, "id", [tty(1), unix(70, 71), tty(1)], 200),
      ],
    },
    {
      name: "the children write to the user's terminal (system(), not popen)",
      steps: [
        ...gawkStart,
        { holds: { 200: [holds(1, "pts:1"), holds(3, `sock:${SOCK}`)] } },
        ...cmd(201, "id", [tty(1), tty(1), tty(1)], 100),
        ...cmd(202, "id", [tty(1), tty(1), tty(1)], 200),
      ],
    },
    {
      name: "the connection is closed by the second command (a new connection per job)",
      steps: [
        ...gawkStart,
        { holds: { 200: [holds(3, `sock:${SOCK}`)] } },
        ...cmd(201, "id", [pipe(11), pipe(12), tty(1)], 100),
        { holds: { 200: [] } },
        ...cmd(202, "id", [pipe(21), pipe(22), tty(1)], 200),
      ],
    },
    {
      name: "script files and interactive shells are not command strings",
      steps: [
        ...gawkStart,
        { holds: { 200: [holds(3, `sock:${SOCK}`)] } },
        ...start(proc(201, 200, "sh"), "/bin/sh", ["sh", "job.sh"], [pipe(11), pipe(12), tty(1)], 100),
        ...start(proc(202, 200, "sh"), "/bin/sh", ["sh", "job2.sh"], [pipe(21), pipe(22), tty(1)], 200),
      ],
    },
    {
      name: "commands further apart than the gap",
      steps: [
        ...gawkStart,
        { holds: { 200: [holds(3, `sock:${SOCK}`)] } },
        ...cmd(201, "id", [pipe(11), pipe(12), tty(1)], 100),
        ...cmd(202, "id", [pipe(21), pipe(22), tty(1)], 100 + 11 * 60_000),
      ],
    },
  ];
  it.each(quiet.map((c) => [c.name, c] as const))("quiet: %s", (_n, c) => {
    expect(run(c.steps)).toEqual([]);
  });

  it("is a built-in rule, off unless asked for", () => {
    expect(builtinRules({ commandRelay: true }).map((r) => r.meta.id)).toContain("RELAY-002");
    expect(builtinRules().map((r) => r.meta.id)).not.toContain("RELAY-002");
  });
});

describe("RELAY-002: the interpreter's own arguments", () => {
  it("`busybox sh -c CMD` is a command string (the applet's options, not argv[0]'s)", () => {
    const bb = (pid: number, command: string, ms: number) =>
      [...start(proc(pid, 200, "busybox"), "/bin/busybox", ["busybox", "sh", "-c", command], [pipe(pid), pipe(pid + 1000), tty(1)], ms), exit({ task: proc(pid, 200, "busybox"), timeMs: at(ms + 1) })];
    const findings = run([
      ...gawkStart,
      { holds: { 200: [holds(3, `sock:${SOCK}`)] } },
      ...bb(201, "id", 100),
      ...bb(202, "uname -a", 200),
    ]);
    expect(findings.map((f) => f.rule.id)).toEqual(["RELAY-002"]);
  });
});

describe("RELAY-002: programs run without a shell (issue 26)", () => {
  const ruby = proc(200, 100, "ruby");
  const rubyStart = [...start(ruby, "/usr/bin/ruby", ["ruby", "-rsocket", "-e", "c = TCPSocket.new(…); loop { c.gets.chomp!; IO.popen($_, ?r) { … } }"], [tty(1), tty(1), tty(1)], 0), connectedOut(ruby, SOCK, 1)];
  const direct = (pid: number, filename: string, args: string[], ms: number) =>
    [...start(proc(pid, 200, "ruby"), filename, args, [tty(1), pipe(pid), tty(1)], ms), exit({ task: proc(pid, 200, args[0]!), timeMs: at(ms + 1) })];

  it("ruby's IO.popen of a chomped line execs `id` and `uname -a` itself: two commands, one finding", () => {
    const findings = run([
      ...rubyStart,
      { holds: { 200: [holds(3, `sock:${SOCK}`), holds(5, "pipe:301", "read")] } },
      ...direct(301, "/usr/bin/id", ["id"], 100),
      { holds: { 200: [holds(3, `sock:${SOCK}`)] } },
      ...direct(302, "/usr/bin/uname", ["uname", "-a"], 900),
    ]);
    expect(findings.map((f) => f.rule.id)).toEqual(["RELAY-002"]);
    const f = findings[0]! as unknown as Finding & { sockeye: { command_relay: { program: { name: string }; commands: { args: string[] }[] } } };
    expect(f.sockeye.command_relay.program.name).toBe("ruby");
    expect(f.sockeye.command_relay.commands.map((c) => c.args)).toEqual([["id"], ["uname", "-a"]]);
  });

  it("`sh -c id` that execs id in its own process is one command, not two", () => {
    const sh = proc(301, 200, "sh");
    expect(run([
      ...rubyStart,
      { holds: { 200: [holds(3, `sock:${SOCK}`), holds(5, "pipe:301", "read")] } },
      ...start(sh, "/bin/sh", ["sh", "-c", "id"], [tty(1), pipe(301), tty(1)], 100),
      exec({ task: sh, filename: "/usr/bin/id", args: ["id"], stdio: [tty(1), pipe(301), tty(1)], timeMs: at(101) }),
      exit({ task: sh, timeMs: at(102) }),
    ])).toEqual([]);
  });

  it("interpreters reading their commands from stdin are not commands (a shell behind the relay's pipes is RELAY-001's)", () => {
    expect(run([
      ...rubyStart,
      { holds: { 200: [holds(3, `sock:${SOCK}`), holds(5, "pipe:301", "read"), holds(6, "pipe:302", "read")] } },
      ...direct(301, "/usr/bin/python3", ["python3", "-i"], 100),
      ...direct(302, "/usr/bin/perl", ["perl"], 200),
    ])).toEqual([]);
  });
});
