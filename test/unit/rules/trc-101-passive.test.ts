/**
 * TRC-101's precise profile on sockets the kernel calls "passive": opened from a listener, but
 * their accept mark is gone (an accept flood evicted it, or the accept predates the sensor).
 * Inbound when a listener in the holder's namespace still holds the local port, or when the
 * socket is no longer in the table (closed: no live shell on it); either way
 * the socket is counted as judged without certainty (RuleState.incomplete, SENSOR-001).
 */
import { describe, expect, it } from "vitest";
import { Engine, ProcessTable, createTrc101Rule, type ExistingTcpSocket, type SensorEvent, type StdioFd } from "sockeye";
import { ListenerTables } from "../../../src/rules/stdio/precise-judge.js";
import { ATTACKER, LOCAL_END, at, dup, inet, proc, silentLogger, start } from "../engine/fixtures.js";
import { fakeHost } from "../host/fake-host.js";

const SOCK = 9001;
const devnull: StdioFd = { kind: "chardev", ino: 5, dev: (1 << 20) | 3 };
const listed = (origin: ExistingTcpSocket["origin"], ino = SOCK): ExistingTcpSocket => ({ ino, family: "inet", local: { ...LOCAL_END }, remote: { ...ATTACKER }, origin });

function run(events: SensorEvent[], existing: ExistingTcpSocket[]) {
  const host = fakeHost({ existing });
  let looks = 0;
  const counting = { ...host, tcpSockets: (pid?: number) => (looks++, host.tcpSockets(pid)) };
  const engine = new Engine({ rules: [createTrc101Rule()], processes: new ProcessTable({ host: counting }), hostName: "h", now: () => at(0), logger: silentLogger });
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
    const ctx = { host, now: () => nowMs } as unknown as Parameters<ListenerTables["inbound"]>[3];
    const look = new ListenerTables();
    expect(look.inbound(SOCK, 7, 9_000, ctx)).toBe(true);
    expect(reads).toBe(1);
    // Events from before that read (a batch's others): answered by it, no new walk.
    expect(look.inbound(SOCK + 1, 8, 9_500, ctx)).toBe(false);
    expect(look.inbound(SOCK + 2, 8, 9_800, ctx)).toBeUndefined(); // closed before the read
    expect(reads).toBe(1);
    // An event at or after the read (less the margin) may name a socket made after it: read again.
    nowMs = 12_000;
    expect(look.inbound(SOCK + 1, 9, 9_950, ctx)).toBe(false);
    expect(reads).toBe(2);
    expect(look.inbound(0, 9, 1, ctx)).toBe(false); // no socket identity
    expect(reads).toBe(2);
  });
});
