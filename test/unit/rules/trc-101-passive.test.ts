/**
 * TRC-101's precise profile on sockets the kernel calls "passive": opened from a listener, but
 * their accept mark is gone (an accept flood evicted it, or the accept predates the sensor).
 * Inbound when a listener in the holder's namespace still holds the local port, or when the
 * socket is no longer in the table (closed: no live shell on it); either way
 * the socket is counted as judged without certainty (RuleState.incomplete, SENSOR-001).
 */
import { describe, expect, it } from "vitest";
import { Engine, ProcessTable, createTrc101Rule, type ExistingTcpSocket, type SensorEvent, type StdioFd } from "sockeye";
import { ListenerTables, StartupInbound } from "../../../src/rules/stdio/precise-judge.js";
import { ATTACKER, LOCAL_END, at, dup, inet, proc, silentLogger, start } from "../engine/fixtures.js";
import { fakeHost } from "../host/fake-host.js";

const SOCK = 9001;
const devnull: StdioFd = { kind: "chardev", ino: 5, dev: (1 << 20) | 3 };
const listed = (origin: ExistingTcpSocket["origin"], ino = SOCK): ExistingTcpSocket => ({ ino, family: "inet", local: { ...LOCAL_END }, remote: { ...ATTACKER }, origin });

/**
 * `existing`: the tables the judge reads while events come; `startup`: what they listed as the
 * sensor started (the rule is prepared), by default nothing (the socket was accepted later and
 * its mark evicted).
 */
function run(events: SensorEvent[], existing: ExistingTcpSocket[], startup: ExistingTcpSocket[] = []) {
  let tables = startup;
  let looks = 0;
  const counting = { ...fakeHost(), tcpSockets: () => (looks++, tables) };
  const engine = new Engine({ rules: [createTrc101Rule()], processes: new ProcessTable({ host: counting }), hostName: "h", now: () => at(0), logger: silentLogger });
  tables = existing;
  looks = 0;
  const findings = events.flatMap((e) => engine.handle(e));
  const stats = engine.stats();
  return { findings, suppressed: stats.suppressedByRule["TRC-101"] ?? {}, incomplete: stats.ruleState["TRC-101"]?.incomplete, looks };
}

const inetd = proc(400, 1, "inetd");
const service = start(inetd, "/bin/sh", ["/bin/sh", "/usr/local/lib/echo-service.sh"], [inet(SOCK, "passive"), inet(SOCK, "passive"), devnull], 0);
const python = proc(500, 1, "python3");
const pythonDups = [
  ...start(python, "/usr/bin/python3", ["python3", "server.py"], [devnull, devnull, devnull], 0),
  dup({ task: python, newfd: 0, oldfd: 3, socketIno: SOCK, socketOnFds: [0], origin: "passive", local: { ...LOCAL_END }, remote: { ...ATTACKER }, timeMs: at(1) }),
  dup({ task: python, newfd: 1, oldfd: 3, socketIno: SOCK, socketOnFds: [0, 1], origin: "passive", local: { ...LOCAL_END }, remote: { ...ATTACKER }, timeMs: at(2) }),
];

describe("TRC-101 precise: a passive socket without its accept mark", () => {
  it("with a listener on its port: a service hand-off, counted as incomplete once", () => {
    const r = run(service, [listed("accepted")]);
    expect(r.findings).toEqual([]);
    expect(r.suppressed).toEqual({ service_handoff: 1 });
    expect(r.incomplete).toBe(1);
  });

  it("an interpreter's own dups onto stdin and stdout, with a listener: held as for an accepted socket, one look", () => {
    const r = run(pythonDups, [listed("accepted")]);
    expect(r.findings).toEqual([]);
    expect(r.incomplete).toBe(1);
    expect(r.looks).toBe(1);
  });

  it("with no listener left (a child disconnected and connect()ed again): judged as connected", () => {
    const outbound = run(service, [listed("outbound")]);
    expect(outbound.findings.map((f) => (f.sockeye["verdict"] as { reason: string; origin: string }))).toEqual([
      expect.objectContaining({ reason: "shell_on_socket", origin: "passive" }),
    ]);
    expect(outbound.incomplete).toBe(1);
    const dups = run(pythonDups, [listed("outbound")]);
    expect(dups.findings.map((f) => (f.sockeye["verdict"] as { reason: string }).reason)).toEqual(["interpreter_stdio_on_socket"]);
  });

  it("not in the table at all (the hand-off answered and closed before its event was judged): inbound, counted incomplete", () => {
    const closed = run(service, []);
    expect(closed.findings).toEqual([]);
    expect(closed.suppressed).toEqual({ service_handoff: 1 });
    expect(closed.incomplete).toBe(1);
    const dups = run(pythonDups, [listed("outbound", SOCK + 1)]);
    expect(dups.findings).toEqual([]);
  });

  it("ListenerTables: beside a listener or closed is inbound, listed alone is not; one read answers for events before it", () => {
    let reads = 0;
    let nowMs = 10_000;
    const tables = [listed("accepted"), listed("outbound", SOCK + 1)];
    const host = { ...fakeHost(), netNamespace: () => 4026531840, tcpSockets: () => (reads++, tables) };
    const ctx = { host, now: () => nowMs } as unknown as Parameters<ListenerTables["look"]>[3];
    const look = new ListenerTables();
    expect(look.look(SOCK, { pid: 7 }, 9_000, ctx)).toBe("listener");
    expect(reads).toBe(1);
    // Events from before that read (a batch's others): answered by it, no new walk.
    expect(look.look(SOCK + 1, { pid: 8 }, 9_500, ctx)).toBe("alone");
    expect(look.look(SOCK + 2, { pid: 8 }, 9_800, ctx)).toBe("closed"); // closed before the read
    expect(reads).toBe(1);
    // An event at or after the read (less the margin) may name a socket made after it: read again.
    nowMs = 12_000;
    expect(look.look(SOCK + 1, { pid: 9 }, 9_950, ctx)).toBe("alone");
    expect(reads).toBe(2);
    expect(look.look(0, { pid: 9 }, 1, ctx)).toBe("alone"); // no socket identity
    expect(reads).toBe(2);
  });

  describe("the holder is gone when its namespace's table is read", () => {
    const NS = 4026532100, OWN = 4026531840;
    /** pid → namespace of the live processes; a table read through a pid not in it is empty. */
    function hostOf(live: Map<number, number>, tables: Map<number, ExistingTcpSocket[]>) {
      const reads: (number | undefined)[] = [];
      const host = {
        ...fakeHost(),
        processIds: () => [...live.keys()],
        netNamespace: (pid?: number) => (pid === undefined ? OWN : live.get(pid)),
        tcpSockets: (pid?: number) => {
          reads.push(pid);
          const ns = pid === undefined ? OWN : live.get(pid);
          return ns === undefined ? [] : (tables.get(ns) ?? []);
        },
      };
      return { host, reads, ctx: (nowMs: number) => ({ host, now: () => nowMs }) as unknown as Parameters<ListenerTables["look"]>[3] };
    }

    it("reads the table through another live process of the event's namespace: a reconnected child is still seen alone", () => {
      const live = new Map([[1, OWN], [50, NS], [51, NS]]);
      const h = hostOf(live, new Map([[NS, [listed("outbound")]]]));
      const look = new ListenerTables();
      // pid 40 (the holder, in NS by its event) is gone: its read is empty, not "closed".
      expect(look.look(SOCK, { pid: 40, netNs: NS }, 9_000, h.ctx(10_000))).toBe("alone");
      expect(h.reads).toEqual([40, 50]);
      // The next holder gone in that namespace reads through the process found last time.
      live.delete(51);
      expect(look.look(SOCK, { pid: 41, netNs: NS }, 10_500, h.ctx(11_000))).toBe("alone");
      expect(h.reads).toEqual([40, 50, 41, 50]);
    });

    it("the daemon's own namespace is read through the daemon", () => {
      const h = hostOf(new Map([[1, OWN]]), new Map([[OWN, [listed("accepted")]]]));
      expect(new ListenerTables().look(SOCK, { pid: 40, netNs: OWN }, 9_000, h.ctx(10_000))).toBe("listener");
      expect(h.reads).toEqual([40, undefined]);
    });

    it("no live process in the namespace: unreadable, not closed, and remembered as the tables are", () => {
      const h = hostOf(new Map([[1, OWN]]), new Map());
      const look = new ListenerTables();
      expect(look.look(SOCK, { pid: 40, netNs: NS }, 9_000, h.ctx(10_000))).toBe("unreadable");
      expect(look.look(SOCK + 1, { pid: 42, netNs: NS }, 9_500, h.ctx(10_000))).toBe("unreadable");
      expect(h.reads).toEqual([40]);
    });

    it("a pid reused in another namespace does not lend its table", () => {
      const live = new Map([[1, OWN], [40, OWN + 7], [50, NS]]);
      const h = hostOf(live, new Map([[OWN + 7, [listed("accepted")]], [NS, []]]));
      expect(new ListenerTables().look(SOCK, { pid: 40, netNs: NS }, 9_000, h.ctx(10_000))).toBe("closed");
      expect(h.reads).toEqual([40, 50]);
    });
  });

  describe("accepted before the sensor started", () => {
    it("listed beside a listener at start with the same peer: a hand-off judged as accepted, not incomplete, no look", () => {
      const r = run(service, [listed("outbound")], [listed("accepted")]);
      expect(r.findings).toEqual([]);
      expect(r.suppressed).toEqual({ service_handoff: 1 });
      expect(r.incomplete).toBe(0);
      expect(r.looks).toBe(0);
      const dups = run(pythonDups, [], [listed("accepted")]);
      expect(dups.findings).toEqual([]);
      expect(dups.incomplete).toBe(0);
    });

    it("a different peer now (disconnected and connect()ed again since): judged by the table now, counted", () => {
      const moved = { ...listed("accepted"), remote: { address: ATTACKER.address, port: ATTACKER.port + 1 } };
      const r = run(service, [listed("outbound")], [moved]);
      expect(r.findings.map((f) => (f.sockeye["verdict"] as { reason: string }).reason)).toEqual(["shell_on_socket"]);
      expect(r.incomplete).toBe(1);
    });

    it("listed at start with no listener: no evidence, judged by the table now, counted", () => {
      const r = run(service, [listed("accepted")], [listed("outbound")]);
      expect(r.findings).toEqual([]);
      expect(r.incomplete).toBe(1);
      expect(r.looks).toBe(1);
    });

    it("StartupInbound: every namespace once, through the first live process in it, kept per host view", () => {
      const NS = 4026532100, OWN = 4026531840;
      const reads: (number | undefined)[] = [];
      const nsOf = new Map([[1, OWN], [60, NS], [61, NS], [70, NS + 1]]);
      const host = {
        ...fakeHost(),
        processIds: () => [1, 59, 60, 61, 70],
        netNamespace: (pid?: number) => (pid === undefined ? OWN : nsOf.get(pid)),
        tcpSockets: (pid?: number) => {
          reads.push(pid);
          if (pid === undefined) return [listed("accepted", 1)];
          return pid === 60 ? [listed("accepted", 2), listed("outbound", 3)] : pid === 70 ? [listed("accepted", 4)] : [];
        },
      };
      const startup = StartupInbound.of(host);
      expect(reads).toEqual([undefined, 60, 70]); // 59 is gone (no namespace); 61 shares 60's
      expect(startup.size).toBe(3);
      expect(startup.accepted(2, { ...ATTACKER })).toBe(true);
      expect(startup.accepted(3, { ...ATTACKER })).toBe(false);
      expect(startup.accepted(4, { ...ATTACKER, port: 1 })).toBe(false);
      expect(StartupInbound.of(host)).toBe(startup); // a reload: no new read
      expect(reads).toHaveLength(3);
    });
  });
});
