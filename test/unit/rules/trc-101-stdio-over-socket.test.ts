import { describe, expect, it } from "vitest";
import {
  Engine,
  TRC101_META,
  createTrc101Rule,
  type EngineLogger,
  type Finding,
  type SensorEvent,
  type Trc101Options,
} from "sockeye";
import { entityId } from "../../../src/process/ecs-process.js";
import { ATTACKER, BASE_TIME_MS, connect, dup, exec, fork } from "../engine/fixtures.js";

const silentLogger: EngineLogger = { warn: () => {} };

// Tracee's verdicts are the "tracee" profile's (the precise default is tested in
// trc-101-precise.test.ts): every case here runs under it.
function run(events: SensorEvent[], options: { rule?: Trc101Options; fold?: boolean } = {}) {
  const engine = new Engine({
    rules: [createTrc101Rule({ profile: "tracee", ...options.rule })],
    hostName: "test-host",
    now: () => BASE_TIME_MS + 5,
    logger: silentLogger,
    ...(options.fold !== undefined ? { fold: options.fold } : {}),
  });
  const findings: Finding[] = events.flatMap((event) => engine.handle(event));
  return { engine, findings };
}

interface Case {
  name: string;
  event: SensorEvent;
}

// docs/design.md §3: Tracee's own unit-test verdicts, all AF_INET.
const traceeValid: Case[] = [
  { name: "connect fd 0", event: connect({ fd: 0 }) },
  { name: "connect fd 1", event: connect({ fd: 1 }) },
  { name: "dup newfd 2", event: dup({ newfd: 2 }) },
];
const traceeInvalid: Case[] = [
  { name: "connect fd 3", event: connect({ fd: 3 }) },
  { name: "connect fd 1 port 0", event: connect({ fd: 1, remote: { address: ATTACKER.address, port: 0 } }) },
  { name: "dup newfd 3", event: dup({ newfd: 3 }) },
  { name: "dup newfd 1 port 0", event: dup({ newfd: 1, remote: { address: ATTACKER.address, port: 0 } }) },
];

const sockeyeValid: Case[] = [
  { name: "IPv6 connect fd 0 to ::1", event: connect({ fd: 0, family: "inet6", familyNumber: 10, remote: { address: "::1", port: 9001 } }) },
  { name: "IPv6 dup2 onto fd 1", event: dup({ newfd: 1, family: "inet6", familyNumber: 10, remote: { address: "fe80::1", port: 443 } }) },
  { name: "fcntl F_DUPFD onto fd 0", event: dup({ syscall: "fcntl", newfd: 0 }) },
  { name: "dup3 onto fd 2", event: dup({ syscall: "dup3", newfd: 2 }) },
  { name: "dup onto closed fd 0", event: dup({ syscall: "dup", newfd: 0 }) },
  { name: "non-blocking connect in progress (-EINPROGRESS)", event: connect({ fd: 0, result: -115 }) },
  { name: "connect whose result is unknown (LSM hook)", event: connect({ fd: 0, result: null, source: "lsm" }) },
  { name: "UDP connect on fd 1", event: connect({ fd: 1, socketType: "dgram", protocol: 17 }) },
];
const sockeyeInvalid: Case[] = [
  {
    name: "AF_UNIX connect on fd 0",
    event: connect({ fd: 0, family: "unix", familyNumber: 1, remote: null, unixPath: "/run/x.sock" }),
  },
  { name: "AF_UNIX socketpair dup'ed onto fd 1", event: dup({ newfd: 1, family: "unix", familyNumber: 1, local: null, remote: null }) },
  { name: "other family (AF_NETLINK) on fd 0", event: connect({ fd: 0, family: "other", familyNumber: 16, remote: null }) },
  { name: "connect with unknown fd (-1, io_uring)", event: connect({ fd: -1 }) },
  { name: "refused connect (-ECONNREFUSED)", event: connect({ fd: 0, result: -111 }) },
  { name: "connect failing with -EBADF", event: connect({ fd: 2, result: -9 }) },
  { name: "inet socket with no remote address", event: dup({ newfd: 0, remote: null }) },
  { name: "dup onto fd 10 (bash saving stdin)", event: dup({ oldfd: 0, newfd: 10 }) },
];

describe("TRC-101 verdicts", () => {
  it.each([...traceeValid, ...sockeyeValid])("alerts: $name", ({ event }) => {
    const { findings } = run([event]);
    expect(findings).toHaveLength(1);
    expect(findings[0]?.rule.id).toBe("TRC-101");
  });

  it.each([...traceeInvalid, ...sockeyeInvalid])("stays silent: $name", ({ event }) => {
    const { findings, engine } = run([event]);
    expect(findings).toEqual([]);
    expect(engine.stats().findingsByRule["TRC-101"]).toBeUndefined();
  });
});

describe("TRC-101 stdio fds", () => {
  it("takes stdio to be fds 0 to the sensor's stdioFdMax, 0-2 by default", () => {
    const fds = [0, 2, 3, 4, 5, -1];
    const fires = (rule?: Trc101Options) => fds.filter((fd) => run([connect({ fd })], rule ? { rule } : {}).findings.length > 0);
    expect(fires()).toEqual([0, 2]);
    expect(fires({ stdioFdMax: 4 })).toEqual([0, 2, 3, 4]);
    expect(fires({ stdioFdMax: 0 })).toEqual([0]);
  });
});

describe("TRC-101 metadata", () => {
  it("reproduces the seed exactly", () => {
    expect(TRC101_META.id).toBe("TRC-101");
    expect(TRC101_META.version).toBe("2");
    expect(TRC101_META.name).toBe("Process standard input/output over socket detected");
    expect(TRC101_META.description).toBe(
      "This behavior hints at a Reverse Shell attack, where an interactive shell is activated from a target machine back to the attacker's machine.",
    );
    expect(TRC101_META.extra).toEqual({
      EventName: "stdio_over_socket",
      Properties: {
        Severity: 3,
        Category: "execution",
        Technique: "Unix Shell",
        id: "attack-pattern--a9d4b653-6915-42af-98b2-5758c4ceee56",
        external_id: "T1059.004",
      },
    });
    expect(TRC101_META.severity).toBe("high");
    expect(TRC101_META.riskScore).toBeUndefined();
  });
});

describe("TRC-101 finding", () => {
  it("carries the seed's Finding fields with their types", () => {
    const { findings } = run([connect({ fd: 1 })]);
    const finding = findings[0]?.["finding"] as Record<string, unknown>;
    expect(finding).toEqual({ "IP address": "10.0.0.66", Port: "4444", "File descriptor": 1 });
    expect(typeof finding["IP address"]).toBe("string");
    expect(typeof finding["Port"]).toBe("string");
    expect(Number.isInteger(finding["File descriptor"])).toBe(true);
  });

  it("is the ECS document of docs/design.md §5 for an outbound reverse shell", () => {
    const shell = { pid: 4242, ppid: 4000, startNs: 5_000_000_000 };
    const { findings } = run([
      exec({ task: { pid: 4000, ppid: 1, startNs: 1_000_000_000, comm: "sshd" }, filename: "/usr/sbin/sshd", args: ["sshd: alice"] }),
      exec({ task: shell, filename: "/usr/bin/bash", args: ["bash", "-i"] }),
      dup({ task: shell, syscall: "dup2", oldfd: 3, newfd: 0 }),
    ]);
    expect(findings).toHaveLength(1);
    const finding = findings[0] as Finding;
    expect(finding["@timestamp"]).toBe("2026-11-22T10:00:00.000Z");
    const uuid: unknown = expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(finding.event).toEqual({
      kind: "alert",
      id: uuid,
      category: ["network"],
      created: "2026-11-22T10:00:00.005Z",
      module: "sockeye",
      action: "stdio_over_socket",
    });
    expect(finding.rule).toMatchObject({
      id: "TRC-101",
      name: "Process standard input/output over socket detected",
      version: "2",
      severity: "high",
    });
    expect(finding.rule.risk_score).toBeUndefined();
    expect(finding.threat).toEqual({
      framework: "MITRE ATT&CK",
      tactic: { id: ["TA0002"], name: ["Execution"], reference: ["https://attack.mitre.org/tactics/TA0002/"] },
      technique: {
        id: ["T1059"],
        name: ["Command and Scripting Interpreter"],
        reference: ["https://attack.mitre.org/techniques/T1059/"],
        subtechnique: { id: ["T1059.004"], name: ["Unix Shell"], reference: ["https://attack.mitre.org/techniques/T1059/004/"] },
      },
    });
    expect(finding.process).toMatchObject({
      pid: 4242,
      name: "bash",
      executable: "/usr/bin/bash",
      args: ["bash", "-i"],
      command_line: "bash -i",
      entity_id: entityId(4242, 5_000_000_000, ""),
      parent: { pid: 4000, name: "sshd", executable: "/usr/sbin/sshd", args: ["sshd: alice"] },
    });
    expect(finding.user).toEqual({ id: "1000" });
    expect(finding.host.name).toBe("test-host");
    expect(finding["destination"]).toEqual({ ip: "10.0.0.66", port: 4444 });
    expect(finding["source"]).toEqual({ ip: "10.0.0.5", port: 51234 });
    expect(finding["network"]).toEqual({ direction: "egress", type: "ipv4", transport: "tcp" });
    expect(finding.sockeye.event).toMatchObject({ kind: "socket_dup", syscall: "dup2", oldfd: 3, newfd: 0 });
    expect(finding.sockeye.cgroup_id).toBe(7777);
  });

  it("falls back to the event's comm and parent comm when the table does not know the process", () => {
    const { findings } = run([connect({ fd: 0, task: { comm: "nc", parentComm: "sh" } })]);
    expect(findings[0]?.process).toEqual({
      pid: 4242,
      name: "nc",
      entity_id: entityId(4242, 5_000_000_000, ""),
      thread: { id: 4242 },
      parent: { pid: 4000, name: "sh" },
    });
    expect(findings[0]?.sockeye.event).toMatchObject({ kind: "connect", fd: 0, source: "tracepoint", result: 0 });
  });
});

describe("TRC-101 folding", () => {
  // bash -i >& /dev/tcp/...: connect on a high fd, then dups onto 0, 1, 2 (and more as bash
  // saves and restores them; those onto fds > 2 are filtered in the kernel).
  const bashDevTcp: SensorEvent[] = [
    connect({ fd: 3 }),
    dup({ oldfd: 3, newfd: 1 }),
    dup({ oldfd: 3, newfd: 2 }),
    dup({ oldfd: 3, newfd: 0 }),
    dup({ oldfd: 3, newfd: 1, timeMs: BASE_TIME_MS + 1000 }),
  ];

  it("folds one shell into one finding by default and counts the rest", () => {
    const { findings, engine } = run(bashDevTcp);
    expect(findings).toHaveLength(1);
    expect(findings[0]?.["finding"]).toMatchObject({ "File descriptor": 1 });
    expect(findings[0]?.sockeye.fold_key).toBe("4242:5000000000:10.0.0.66:4444");
    const stats = engine.stats();
    expect(stats.findingsByRule["TRC-101"]).toBe(1);
    expect(stats.foldedByRule["TRC-101"]).toBe(3);
    expect(stats.folded).toBe(3);
  });

  it.each([
    { how: "engine option fold: false", options: { fold: false } },
    { how: "rule option fold: false", options: { rule: { fold: false } } },
  ])("gives one finding per dup with $how", ({ options }) => {
    const { findings, engine } = run(bashDevTcp, options);
    expect(findings.map((finding) => (finding["finding"] as { "File descriptor": number })["File descriptor"])).toEqual([1, 2, 0, 1]);
    expect(findings.every((finding) => finding.sockeye.fold_key === undefined)).toBe(true);
    expect(engine.stats().folded).toBe(0);
  });

  it("keeps separate findings for another remote endpoint and for a reused pid", () => {
    const { findings } = run([
      dup({ newfd: 0 }),
      dup({ newfd: 0, remote: { address: "10.0.0.67", port: 4444 } }),
      dup({ newfd: 0, task: { startNs: 9_000_000_000 } }),
      dup({ newfd: 1, task: { startNs: 9_000_000_000 } }),
    ]);
    expect(findings.map((finding) => finding.sockeye.fold_key)).toEqual([
      "4242:5000000000:10.0.0.66:4444",
      "4242:5000000000:10.0.0.67:4444",
      "4242:9000000000:10.0.0.66:4444",
    ]);
  });
});

describe("TRC-101 inbound sockets and the allowlist", () => {
  const client = { address: "10.0.0.99", port: 40000 };
  const listening = { address: "10.0.0.5", port: 23 };
  const accepted = (taskFields: Parameters<typeof dup>[0]) =>
    dup({ origin: "accepted", newfd: 0, remote: client, local: listening, ...taskFields });

  it("marks an accepted socket on stdio as ingress, remote end as source", () => {
    const { findings } = run([accepted({ task: { comm: "bindshell", parentComm: "bash" } })]);
    expect(findings).toHaveLength(1);
    expect(findings[0]?.["network"]).toMatchObject({ direction: "ingress" });
    expect(findings[0]?.["source"]).toEqual({ ip: "10.0.0.99", port: 40000 });
    expect(findings[0]?.["destination"]).toEqual({ ip: "10.0.0.5", port: 23 });
    expect(findings[0]?.["finding"]).toEqual({ "IP address": "10.0.0.99", Port: "40000", "File descriptor": 0 });
  });

  it("suppresses and counts inetd's child putting an accepted socket on stdio", () => {
    const inetd = { pid: 500, ppid: 1, startNs: 2_000_000_000, comm: "inetd", parentComm: "systemd" };
    const child = { pid: 501, ppid: 500, startNs: 6_000_000_000, comm: "inetd", parentComm: "inetd" };
    const { findings, engine } = run([
      exec({ task: inetd, filename: "/usr/sbin/inetd", args: ["/usr/sbin/inetd"] }),
      fork({ task: child }),
      accepted({ task: child }),
      accepted({ task: child, newfd: 1 }),
    ]);
    expect(findings).toEqual([]);
    expect(engine.stats().suppressedByRule["TRC-101"]).toEqual({ "allowlist:inetd": 2 });
  });

  it("suppresses systemd socket activation (a child of pid 1 still running systemd)", () => {
    const init = { pid: 1, ppid: 0, startNs: 100_000_000, comm: "systemd", parentComm: "swapper/0" };
    const child = { pid: 900, ppid: 1, startNs: 7_000_000_000, comm: "(sshd)", parentComm: "systemd" };
    const { findings, engine } = run([
      exec({ task: init, filename: "/usr/lib/systemd/systemd", args: ["/sbin/init"] }),
      fork({ task: child }),
      accepted({ task: child }),
    ]);
    expect(findings).toEqual([]);
    expect(engine.stats().suppressedByRule["TRC-101"]).toEqual({ "allowlist:systemd-socket-activation": 1 });
  });

  it("still alerts on an orphaned bind shell whose parent is pid 1", () => {
    const init = { pid: 1, ppid: 0, startNs: 100_000_000, comm: "systemd", parentComm: "swapper/0" };
    const orphan = { pid: 901, ppid: 1, startNs: 7_000_000_000, comm: "python3", parentComm: "systemd" };
    const { findings, engine } = run([
      exec({ task: init, filename: "/usr/lib/systemd/systemd" }),
      exec({ task: orphan, filename: "/usr/bin/python3", args: ["python3", "bind.py"] }),
      accepted({ task: orphan }),
    ]);
    expect(findings).toHaveLength(1);
    expect(findings[0]?.["network"]).toMatchObject({ direction: "ingress" });
    expect(engine.stats().suppressedByRule["TRC-101"]).toBeUndefined();
  });

  it("never suppresses an outbound (connected) socket, even from an allowlisted program", () => {
    const inetd = { pid: 500, ppid: 1, startNs: 2_000_000_000, comm: "inetd" };
    const { findings } = run([
      exec({ task: inetd, filename: "/usr/sbin/inetd" }),
      dup({ task: inetd, origin: "connected", newfd: 0 }),
    ]);
    expect(findings).toHaveLength(1);
    expect(findings[0]?.["network"]).toMatchObject({ direction: "egress" });
  });

  it("does not allowlist by comm alone: an unknown executable never matches", () => {
    const { findings } = run([accepted({ task: { comm: "inetd", parentComm: "inetd" } })]);
    expect(findings).toHaveLength(1);
  });

  it("takes a custom allowlist in place of the defaults", () => {
    const rule = { allowlist: [{ label: "telnetd", name: "in.telnetd", parentName: ["xinetd", "inetd"] }] };
    const daemon = { pid: 700, ppid: 600, startNs: 8_000_000_000, comm: "in.telnetd", parentComm: "inetd" };
    const { findings, engine } = run([exec({ task: daemon, filename: "/usr/sbin/in.telnetd" }), accepted({ task: daemon })], { rule });
    expect(findings).toEqual([]);
    expect(engine.stats().suppressedByRule["TRC-101"]).toEqual({ "allowlist:telnetd": 1 });
  });

  it("adds extraAllowlist entries to the defaults", () => {
    const rule = { extraAllowlist: [{ label: "telnetd", name: "in.telnetd" }] };
    const daemon = { pid: 700, ppid: 600, startNs: 8_000_000_000, comm: "in.telnetd", parentComm: "inetd" };
    const inetd = { pid: 710, ppid: 1, startNs: 8_100_000_000, comm: "inetd", parentComm: "systemd" };
    const { findings, engine } = run(
      [
        exec({ task: daemon, filename: "/usr/sbin/in.telnetd" }),
        accepted({ task: daemon }),
        exec({ task: inetd, filename: "/usr/sbin/inetd" }),
        accepted({ task: inetd }),
      ],
      { rule },
    );
    expect(findings).toEqual([]);
    expect(engine.stats().suppressedByRule["TRC-101"]).toEqual({ "allowlist:telnetd": 1, "allowlist:inetd": 1 });
  });

  it("rejects an allowlist entry that would match everything", () => {
    expect(() => createTrc101Rule({ allowlist: [{ label: "oops" }] })).toThrow(/at least one field/);
  });
});
