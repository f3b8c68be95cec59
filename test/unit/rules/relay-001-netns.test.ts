/**
 * RELAY-001 and network namespaces: a socket no connect record names (io_uring's connect, a
 * socket older than the sensor) is looked up in the TCP table of the namespace its holder and
 * its shell are in, then the sensor's own, each namespace read at most once per evaluation.
 * The host is a fake whose tables are per namespace and which logs every table read.
 */
import { describe, expect, it } from "vitest";
import { Engine, ProcessTable, createRelay001Rule, type ExistingTcpSocket, type Finding, type Holding, type SensorEvent } from "sockeye";
import { LOCAL_END as LOCAL, at, fifo, holds, pipe, proc, silentLogger, start, tty } from "../engine/fixtures.js";
import { fakeHost } from "../host/fake-host.js";
import { NamespaceTcpTables } from "../../../src/rules/relay/namespace-tables.js";

const REMOTE = { address: "127.0.0.1", port: 4444 };
const SOCK = 9001;
/** The sensor's own network namespace, and a container's. */
const HOST_NS = 4026531840;
const CONTAINER_NS = 4026532500;

const socket = (ino: number, origin: ExistingTcpSocket["origin"] = "outbound"): ExistingTcpSocket =>
  ({ ino, family: "inet", local: { ...LOCAL }, remote: { ...REMOTE }, origin });

/** A fake host with one TCP table per namespace; `reads` logs each table read by the namespace it showed. */
function namespacedHost(nsOf: Record<number, number>, tables: Record<number, ExistingTcpSocket[]>, withNetNamespace = true) {
  const base = fakeHost();
  const reads: number[] = [];
  const nsOfPid = (pid?: number) => (pid === undefined ? HOST_NS : nsOf[pid]);
  const host = {
    ...base,
    tcpSockets: (pid?: number) => {
      const ns = nsOfPid(pid);
      if (ns === undefined) return [];
      reads.push(ns);
      return tables[ns] ?? [];
    },
    ...(withNetNamespace ? { netNamespace: nsOfPid } : { netNamespace: undefined }),
  };
  return { host, world: base.world, reads };
}

/** An event, a change to what processes hold (their /proc/<pid>/fd), or a change to the host's tables. */
type Step = SensorEvent | { holds: Record<number, Holding[]> } | (() => void);

function run(host: ReturnType<typeof namespacedHost>, steps: Step[]) {
  const engine = new Engine({ rules: [createRelay001Rule()], processes: new ProcessTable({ host: host.host }), hostName: "h", now: () => at(0), logger: silentLogger });
  const findings: Finding[] = [];
  for (const step of steps) {
    if (typeof step === "function") step();
    else if ("holds" in step) for (const [pid, held] of Object.entries(step.holds)) host.world.set(Number(pid), held);
    else findings.push(...engine.handle(step));
  }
  return { findings, state: engine.stats().ruleState["RELAY-001"]! };
}

const relay = proc(200, 1, "python3");
const shell = proc(201, 200, "sh");

/** A python relay (its connect unseen, as io_uring's is) runs sh -i behind two pipes, at `ms`. */
function ioUringRelay(relayHolds: Holding[] = [holds(3, `sock:${SOCK}`), holds(5, "pipe:11", "write"), holds(6, "pipe:12", "read")], ms = 2): Step[] {
  return [
    ...start(relay, "/usr/bin/python3", ["python3", "-c", "..."], [tty(1), tty(1), tty(1)], 1),
    { holds: { 200: relayHolds, 201: [holds(0, "pipe:11", "read"), holds(1, "pipe:12", "write"), holds(2, "pipe:12", "write")] } },
    ...start(shell, "/bin/sh", ["/bin/sh", "-i"], [pipe(11), pipe(12), pipe(12)], ms),
  ];
}

type Relay = { sockeye: { relay: { connect_unseen?: boolean; connected_by: unknown; remote: { port: number }; socket_inode: number } } };

describe("RELAY-001: a socket no connect names, in another network namespace", () => {
  it("the relay and its shell in a container's netns: found in that namespace's table, connect_unseen", () => {
    const host = namespacedHost({ 200: CONTAINER_NS, 201: CONTAINER_NS }, { [CONTAINER_NS]: [socket(SOCK)], [HOST_NS]: [] });
    const { findings } = run(host, ioUringRelay());
    expect(findings.map((f) => f.rule.id)).toEqual(["RELAY-001"]);
    const r = (findings[0] as unknown as Relay).sockeye.relay;
    expect(r.connect_unseen).toBe(true);
    expect(r.connected_by).toBeNull();
    expect(r.remote.port).toBe(REMOTE.port);
    expect(r.socket_inode).toBe(SOCK);
    // prepare() read the sensor's own table once; the evaluation read the container's, and
    // found the socket there, so not the sensor's again.
    expect(host.reads).toEqual([HOST_NS, CONTAINER_NS]);
  });

  it("processes whose namespace and table cannot be read (gone): the sensor's table only, the socket not there, no finding", () => {
    const host = namespacedHost({}, { [CONTAINER_NS]: [socket(SOCK)], [HOST_NS]: [] });
    expect(run(host, ioUringRelay()).findings).toEqual([]);
    expect(host.reads.every((ns) => ns === HOST_NS)).toBe(true);
  });

  it("accepted in the container's table (a listener on its port): no finding, and no further table read for it", () => {
    const host = namespacedHost({ 200: CONTAINER_NS, 201: CONTAINER_NS }, { [CONTAINER_NS]: [socket(SOCK, "accepted")], [HOST_NS]: [] });
    expect(run(host, ioUringRelay()).findings).toEqual([]);
    expect(host.reads).toEqual([HOST_NS, CONTAINER_NS]);
  });

  it("connected on the host before its holder moved to another netns: found in the sensor's own table after the holder's", () => {
    const tables: Record<number, ExistingTcpSocket[]> = { [CONTAINER_NS]: [], [HOST_NS]: [] };
    const host = namespacedHost({ 200: CONTAINER_NS, 201: CONTAINER_NS }, tables);
    // Not there as the rule is prepared: connected (unseen) while the sensor runs.
    const { findings } = run(host, [() => (tables[HOST_NS] = [socket(SOCK)]), ...ioUringRelay()]);
    expect(findings.map((f) => f.rule.id)).toEqual(["RELAY-001"]);
    expect(host.reads).toEqual([HOST_NS, CONTAINER_NS, HOST_NS]);
  });

  it("each namespace's table is read at most once per evaluation, however many unknown sockets the chain reaches", () => {
    // The relay holds four unix sockets besides the TCP one: none is in any table, yet each
    // namespace is read once (the holder's and the shell's are the same here).
    const many = [3, 4, 7, 8].map((fd) => holds(fd, `sock:${7000 + fd}`));
    const host = namespacedHost({ 200: CONTAINER_NS, 201: CONTAINER_NS }, { [CONTAINER_NS]: [], [HOST_NS]: [] });
    const { findings } = run(host, ioUringRelay([...many, holds(5, "pipe:11", "write"), holds(6, "pipe:12", "read")]));
    expect(findings).toEqual([]);
    // prepare(), then one evaluation (the shell's exec): the container's and the sensor's, once each.
    expect(host.reads).toEqual([HOST_NS, CONTAINER_NS, HOST_NS]);
  });

  it("everything in the sensor's namespace: one table read per evaluation, as before", () => {
    const tables: Record<number, ExistingTcpSocket[]> = { [HOST_NS]: [] };
    const host = namespacedHost({ 200: HOST_NS, 201: HOST_NS }, tables);
    const { findings } = run(host, [() => (tables[HOST_NS] = [socket(SOCK)]), ...ioUringRelay()]);
    expect(findings.map((f) => f.rule.id)).toEqual(["RELAY-001"]);
    expect(host.reads).toEqual([HOST_NS, HOST_NS]);
  });
});

describe("RELAY-001: a chain through more network namespaces than one evaluation reads", () => {
  // cat F | sh -i | relay > F: the cat (holding an unknown unix socket) feeds the shell from a
  // FIFO the relay writes; the relay holds the connection, unseen.
  const cat = proc(202, 200, "cat");
  const steps: Step[] = [
    ...start(relay, "/usr/bin/python3", ["python3", "-c", "..."], [tty(1), tty(1), tty(1)], 1),
    { holds: { 202: [holds(0, "fifo:254:1:40", "read"), holds(1, "pipe:11", "write"), holds(3, "sock:7001")] } },
    ...start(cat, "/usr/bin/cat", ["cat"], [fifo(40), pipe(11), tty(1)], 2),
    { holds: { 200: [holds(3, `sock:${SOCK}`), holds(5, "fifo:254:1:40", "write"), holds(6, "pipe:12", "read")], 201: [holds(0, "pipe:11", "read"), holds(1, "pipe:12", "write"), holds(2, "pipe:12", "write")] } },
    ...start(shell, "/bin/sh", ["/bin/sh", "-i"], [pipe(11), pipe(12), pipe(12)], 3),
  ];

  it("the cat, the shell and the sensor in three namespaces, the relay in a fourth: cut and counted incomplete, not a silent no", () => {
    const host = namespacedHost({ 200: 4, 201: 2, 202: 3 }, { 2: [], 3: [], 4: [socket(SOCK)], [HOST_NS]: [] });
    const { findings, state } = run(host, steps);
    expect(findings).toEqual([]);
    expect(state.incomplete).toBeGreaterThan(0);
    expect(host.reads).not.toContain(4);
  });

  it("the relay in the cat's namespace: found within the budget, one finding, nothing incomplete", () => {
    const host = namespacedHost({ 200: 3, 201: 2, 202: 3 }, { 2: [], 3: [socket(SOCK)], [HOST_NS]: [] });
    const { findings, state } = run(host, steps);
    expect(findings.map((f) => f.rule.id)).toEqual(["RELAY-001"]);
    expect(state.incomplete).toBe(0);
  });
});

describe("NamespaceTcpTables: one read per namespace, a bounded number of namespaces", () => {
  const host = (nsOf: Record<number, number>, tables: Record<number, ExistingTcpSocket[]>) => namespacedHost(nsOf, tables);

  it("reads the holder's namespace, then the shell's, then the sensor's own, stopping at the first that has the socket", () => {
    const h = host({ 10: 1, 11: 2 }, { 1: [], 2: [socket(5)], [HOST_NS]: [socket(6)] });
    const t = new NamespaceTcpTables(h.host, 3);
    expect(t.find(5, [10, 11])?.ino).toBe(5);
    expect(h.reads).toEqual([1, 2]);
    expect(t.find(5, [10, 11])?.ino).toBe(5);
    expect(t.find(6, [10, 11])?.ino).toBe(6);
    expect(h.reads).toEqual([1, 2, HOST_NS]);
    expect(t.find(99, [10, 11])).toBeUndefined();
    expect(h.reads).toEqual([1, 2, HOST_NS]);
    expect(t.cut).toBe(false);
  });

  it("a unix socket is told from the namespaces' unix lists: no TCP table is read for it", () => {
    const h = host({ 10: 1, 11: 2 }, { 1: [], 2: [socket(5)] });
    const unixReads: (number | undefined)[] = [];
    const withUnix = {
      ...h.host,
      unixSocketInodes: (pid?: number) => {
        unixReads.push(pid);
        return new Set(pid === 11 ? [77] : []);
      },
    };
    const t = new NamespaceTcpTables(withUnix, 3);
    expect(t.find(77, [10, 11])).toBeUndefined();
    expect(h.reads).toEqual([]);
    expect(unixReads).toEqual([10, 11]);
    // A TCP socket: every unix list once per evaluation, then the TCP tables as before.
    expect(t.find(5, [10, 11])?.ino).toBe(5);
    expect(unixReads).toEqual([10, 11, undefined]);
    expect(h.reads).toEqual([1, 2]);
    expect(t.find(77, [10, 11])).toBeUndefined();
    expect(unixReads).toEqual([10, 11, undefined]);
  });

  it("pids in one namespace share one read", () => {
    const h = host({ 10: 1, 11: 1, 12: 1 }, { 1: [] });
    const t = new NamespaceTcpTables(h.host, 3);
    expect(t.find(5, [10, 11])).toBeUndefined();
    expect(t.find(6, [12, 11])).toBeUndefined();
    expect(h.reads).toEqual([1, HOST_NS]);
  });

  it("past the budget of namespaces the look is cut (the rule counts it incomplete), not answered 'not there'", () => {
    const h = host({ 10: 1, 11: 2, 12: 3 }, { 3: [socket(5)] });
    const t = new NamespaceTcpTables(h.host, 2);
    expect(t.find(5, [10, 11, 12])).toBeUndefined();
    expect(t.cut).toBe(true);
    expect(h.reads).toEqual([1, 2]);
  });

  it("a process whose namespace link cannot be read still has its table read, keyed by its pid; a host view without netNamespace too", () => {
    const base = host({ 10: 1, 11: 2 }, { 1: [], 2: [socket(5)] });
    // The link unreadable for pid 10 (no ptrace access), its /proc/10/net readable.
    const unlinked = { ...base.host, netNamespace: (pid?: number) => (pid === 10 ? undefined : base.host.netNamespace!(pid)) };
    const t = new NamespaceTcpTables(unlinked, 3);
    expect(t.find(5, [10, 11])?.ino).toBe(5);
    expect(base.reads).toEqual([1, 2]);
    const old = namespacedHost({ 10: 1, 11: 1 }, { 1: [] }, false);
    expect(new NamespaceTcpTables(old.host, 3).find(5, [10, 11])).toBeUndefined();
    expect(old.reads).toEqual([1, 1, HOST_NS]);
  });
});
