/**
 * The outbound-socket registry RELAY-001 and RELAY-002 share: the one filter of usable
 * connects, and its count and age bounds.
 */
import { describe, expect, it } from "vitest";
import { OutboundRegistry, outboundSocketOf, type OutboundSocket } from "../../../src/rules/sockets/outbound-registry.js";
import { EINPROGRESS } from "../../../src/rules/sockets/identity.js";
import { BASE_TIME_MS, connect } from "../engine/fixtures.js";

const socket = (ino: number, pid = 100): OutboundSocket => ({
  ino, pid, startNs: pid, comm: "nc", timeMs: BASE_TIME_MS, family: "inet", local: null, remote: { address: "10.0.0.66", port: 4444 },
});

describe("outbound sockets", () => {
  it.each([
    ["a connect that succeeded", connect({ socketIno: 7 }), 7],
    ["a non-blocking connect under way (EINPROGRESS)", connect({ socketIno: 7, result: -EINPROGRESS }), 7],
    ["a connect whose outcome the hook could not see", connect({ socketIno: 7, result: null }), 7],
    ["a refused connect", connect({ socketIno: 7, result: -111 }), undefined],
    ["a unix socket", connect({ socketIno: 7, family: "unix", familyNumber: 1 }), undefined],
    ["no inode (an old capture)", connect({ socketIno: 0 }), undefined],
    ["no address", connect({ socketIno: 7, remote: null }), undefined],
  ])("%s", (_name, event, ino) => {
    expect(outboundSocketOf(event)?.ino).toBe(ino);
  });

  it("UDP churn (a resolver's connected socket per query) never pushes out a TCP socket, nor TCP a UDP one", () => {
    const registry = new OutboundRegistry({ maxSockets: 2, maxAgeMs: 60_000 });
    registry.remember(socket(1), 0);
    registry.remember({ ...socket(2), transport: "udp" }, 1);
    for (let ino = 10; ino < 100; ino++) registry.remember({ ...socket(ino, 200), transport: "udp" }, ino);
    expect(registry.get(1)?.ino).toBe(1);
    expect(registry.get(2)).toBeUndefined();
    expect([...registry.values()].map((s) => s.ino)).toEqual([1, 98, 99]);
    registry.remember(socket(3), 100);
    registry.remember(socket(4), 101);
    expect(registry.get(1)).toBeUndefined();
    expect(registry.get(99)?.transport).toBe("udp");
    expect(registry.evicted).toBe(90); // 89 UDP, then TCP socket 1
  });

  it("past maxSockets the least recently touched socket goes, counted as evicted", () => {
    const registry = new OutboundRegistry({ maxSockets: 2, maxAgeMs: 60_000 });
    registry.remember(socket(1), 0);
    registry.remember(socket(2), 1);
    registry.touch(1, 2);
    registry.remember(socket(3), 3);
    expect([...registry.values()].map((s) => s.ino)).toEqual([1, 3]);
    expect(registry.evicted).toBe(1);
    expect(registry.ofPid(100).map((s) => s.ino)).toEqual([1, 3]);
  });

  it("a socket untouched for maxAgeMs goes, counted as expired; a touched one stays", () => {
    const registry = new OutboundRegistry({ maxSockets: 100, maxAgeMs: 10_000 });
    registry.remember(socket(1), 0);
    registry.remember(socket(2, 200), 0);
    registry.touch(2, 8_000);
    registry.expire(10_001);
    expect([...registry.values()].map((s) => s.ino)).toEqual([2]);
    expect(registry.expired).toBe(1);
    expect(registry.ofPid(100)).toEqual([]);
    registry.expire(18_002);
    expect(registry.size).toBe(0);
    expect(registry.expired).toBe(2);
  });
});
