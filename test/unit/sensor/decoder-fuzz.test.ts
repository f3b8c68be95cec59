import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeBatch, type DecodeDropReason } from "../../../src/sensor/decode.js";
import type { AddressFamily, Endpoint, SocketType, StdioFd, TaskContext } from "../../../src/sensor/events.js";
import { ARGS_MAX, EventKindCode, FdKindCode, FILENAME_MAX, LAYOUT, UNIX_PATH_LEN } from "../../../src/sensor/layout.js";
import { batchOf, encodeRecord, type KernelEvent } from "./record-encoder.js";

// Property-based: events are generated in the decoder's own shape, written as the kernel lays
// them out (record-encoder.ts), decoded, and must come back equal; then the same batches cut,
// padded and corrupted. Each property tallies what it reached, and the last test asserts that
// every record kind, stdio fd kind and drop reason was reached: a generator that stops
// reaching a decoder branch fails here instead of passing quietly.

const RUNS = 300;
const reached = new Map<string, number>();
const tally = (what: string) => reached.set(what, (reached.get(what) ?? 0) + 1);

const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const i32 = fc.integer({ min: -0x8000_0000, max: 0x7fff_ffff });
const u53 = fc.maxSafeNat();

/** Text without NUL whose UTF-8 fits `maxBytes`. */
const cText = (maxBytes: number, minLength = 0) =>
  fc.string({ unit: "grapheme", minLength, maxLength: maxBytes })
    .map((s) => s.replace(/\0/g, ""))
    .filter((s) => s.length >= minLength && Buffer.byteLength(s) <= maxBytes);

const nonZeroU32 = fc.integer({ min: 1, max: 2 ** 32 - 1 });
// Namespace fields: absent (0 in the record: not known) or set, each on its own.
const task: fc.Arbitrary<TaskContext> = fc.record(
  {
    pid: u32, tid: u32, ppid: u32, uid: u32, gid: u32, cgroupId: u53, startNs: u53,
    comm: cText(16), parentComm: cText(16), nsPid: nonZeroU32, pidNs: nonZeroU32, mntNs: nonZeroU32, netNs: nonZeroU32,
  },
  { requiredKeys: ["pid", "tid", "ppid", "uid", "gid", "cgroupId", "startNs", "comm", "parentComm"] },
);

const ipv4 = fc.tuple(u8, u8, u8, u8).map((b) => b.join("."));
/** RFC 5952 text as the WHATWG URL serializer writes it; v4-mapped keeps its dotted tail. */
const ipv6 = fc.oneof(
  fc.array(fc.oneof(fc.constant(0), u16), { minLength: 8, maxLength: 8 })
    .filter((w) => !(w.slice(0, 5).every((x) => x === 0) && w[5] === 0xffff))
    .map((w) => new URL(`http://[${w.map((x) => x.toString(16)).join(":")}]`).hostname.slice(1, -1)),
  ipv4.map((v4) => `::ffff:${v4}`),
);
const endpointOf = (family: "inet" | "inet6"): fc.Arbitrary<Endpoint> =>
  fc.record({ address: family === "inet" ? ipv4 : ipv6, port: u16 });
const socketType = fc.constantFrom<SocketType>("stream", "dgram", "raw", "seqpacket", "other");
const inetFamily = fc.constantFrom<"inet" | "inet6">("inet", "inet6");
const familyNumber = fc.oneof(fc.constantFrom(1, 2, 10), u16);
const familyName = (n: number): AddressFamily => (n === 2 ? "inet" : n === 10 ? "inet6" : n === 1 ? "unix" : "other");
const stdioFds = fc.subarray([0, 1, 2]);

const stdioFd: fc.Arbitrary<StdioFd> = fc.oneof(
  fc.constant<StdioFd>({ kind: "closed" }),
  inetFamily.chain((family) => fc.record({
    kind: fc.constant("inet" as const), ino: u32, family: fc.constant(family), socketType,
    origin: fc.constantFrom("unknown" as const, "accepted" as const, "connected" as const, "passive" as const), state: u8,
    local: endpointOf(family), remote: endpointOf(family),
  })),
  fc.record({ kind: fc.constant("unix" as const), ino: u32, socketType, peerIno: u32 }),
  fc.record({ kind: fc.constant("socket" as const), ino: u32, familyNumber: u16 }),
  fc.record({ kind: fc.constantFrom("pipe" as const, "fifo" as const, "file" as const, "chardev" as const, "other" as const), ino: u32, dev: u32 }),
  fc.record({ kind: fc.constantFrom("tty" as const, "pty_master" as const), ino: u32, ttyIndex: i32, controlling: fc.boolean() }),
);

const base = fc.record({ timeNs: u53, task });
const withTime = <T extends object>(b: { timeNs: number; task: TaskContext }, rest: T) => ({ ...b, timeMs: b.timeNs / 1e6, ...rest });

/** The socket's inode and the stdio fds holding it; none when the inode is unknown (0). */
const socketPlace = fc.record({ socketIno: u32, socketOnFds: stdioFds })
  .map((s) => (s.socketIno === 0 ? { socketIno: 0, socketOnFds: [] } : s));

const connect: fc.Arbitrary<KernelEvent> = fc.record({
  base, familyNumber, fd: i32, result: fc.option(i32.filter((r) => r !== 0x7fff_ffff), { nil: null }), socketType,
  protocol: u16, source: fc.constantFrom("lsm" as const, "fentry" as const, "tracepoint" as const), place: socketPlace,
  remote: fc.record({ v4: endpointOf("inet"), v6: endpointOf("inet6") }),
  unixPath: fc.oneof(cText(UNIX_PATH_LEN, 1).filter((p) => !p.startsWith("@")), cText(UNIX_PATH_LEN - 1).map((p) => `@${p}`)),
}).map(({ base: b, familyNumber: n, place, remote, unixPath, ...rest }) => {
  const family = familyName(n);
  return withTime(b, {
    kind: "connect" as const, ...rest, family, familyNumber: n, ...place,
    remote: family === "inet" ? remote.v4 : family === "inet6" ? remote.v6 : null,
    unixPath: family === "unix" ? unixPath : null,
  });
});

const socketDup: fc.Arbitrary<KernelEvent> = fc.record({
  base, familyNumber, oldfd: i32, newfd: i32, socketType, protocol: u16, state: u8, place: socketPlace,
  syscall: fc.constantFrom("dup" as const, "dup2" as const, "dup3" as const, "fcntl" as const),
  origin: fc.constantFrom("unknown" as const, "accepted" as const, "connected" as const, "passive" as const),
  v4: fc.tuple(endpointOf("inet"), endpointOf("inet")), v6: fc.tuple(endpointOf("inet6"), endpointOf("inet6")),
}).map(({ base: b, familyNumber: n, place, v4, v6, ...rest }) => {
  const family = familyName(n);
  const ends = family === "inet" ? v4 : family === "inet6" ? v6 : [null, null];
  return withTime(b, { kind: "socket_dup" as const, ...rest, family, familyNumber: n, ...place, local: ends[0], remote: ends[1] });
});

/** A u64 capability set as 16 hex digits, or a record whose sets the kernel could not read. */
const capabilitySet = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((n) => n.toString(16).padStart(16, "0"));
const capabilities = fc.option(fc.record({ effective: capabilitySet, permitted: capabilitySet }), { nil: null });

/** argv as the kernel copies it: elements NUL-terminated, the last one cut (no NUL) when truncated. */
const exec: fc.Arbitrary<KernelEvent> = fc.record({
  base, filename: cText(FILENAME_MAX - 1), filenameTruncated: fc.boolean(), loginUid: u32,
  args: fc.array(cText(64), { maxLength: 40 }), cutLast: fc.boolean(),
  stdio: fc.tuple(stdioFd, stdioFd, stdioFd), capabilities, sid: fc.option(u32, { nil: undefined }),
}).map(({ base: b, args, cutLast, ...rest }) => {
  const cut = cutLast && args.length > 0 && args.at(-1) !== "";
  const raw = Buffer.from(args.map((a, i) => (cut && i === args.length - 1 ? a : `${a}\0`)).join(""));
  return withTime(b, { kind: "exec" as const, ...rest, args, argsRaw: raw.toString("base64"), argsTruncated: cut });
}).filter((e) => Buffer.from(e.argsRaw, "base64").length < ARGS_MAX);

const fork: fc.Arbitrary<KernelEvent> = base.map((b) => withTime(b, { kind: "fork" as const }));
const exit: fc.Arbitrary<KernelEvent> = fc.record({ base, exitCode: i32 }).map(({ base: b, exitCode }) => withTime(b, { kind: "exit" as const, exitCode }));
const outbound: fc.Arbitrary<KernelEvent> = fc.record({ base, family: inetFamily, transport: fc.constantFrom("tcp" as const, "udp" as const), fd: i32, result: i32, socketIno: u32, sent: fc.boolean() })
  .chain(({ base: b, sent, ...rest }) => fc.tuple(endpointOf(rest.family), endpointOf(rest.family))
    // An unconnected UDP socket's first send (cgroup/sendmsg) is marked; a TCP record never is.
    .map(([local, remote]) => withTime(b, { kind: "outbound" as const, ...rest, local, remote, ...(sent && rest.transport === "udp" ? { unconnected: true as const } : {}) })));

const credSyscall = fc.constantFrom("setuid" as const, "setreuid" as const, "setresuid" as const, "setgid" as const, "setregid" as const,
  "setresgid" as const, "setsid" as const);
const credIds = fc.record({ euid: u32, suid: u32, egid: u32, sgid: u32 });
const credChange: fc.Arbitrary<KernelEvent> = fc.record({
  base, syscall: credSyscall, changed: fc.record({ uid: fc.boolean(), gid: fc.boolean(), session: fc.boolean() }),
  ids: credIds, oldIds: fc.record({ uid: u32, euid: u32, suid: u32, gid: u32, egid: u32, sgid: u32 }), sid: fc.option(u32.filter((n) => n !== 0), { nil: undefined }),
  capabilities,
}).map(({ base: b, ids, sid, ...rest }) => withTime(b, {
  kind: "cred_change" as const, ...rest,
  // The new real ids are the task context's: the record has no other copy of them.
  ids: { uid: b.task.uid, euid: ids.euid, suid: ids.suid, gid: b.task.gid, egid: ids.egid, sgid: ids.sgid },
  ...(sid === undefined ? {} : { sid }),
}));

const accept: fc.Arbitrary<KernelEvent> = fc.record({ base, family: inetFamily, fd: i32, socketIno: u32 })
  .chain(({ base: b, ...rest }) => fc.tuple(endpointOf(rest.family), endpointOf(rest.family))
    .map(([local, remote]) => withTime(b, { kind: "accept" as const, ...rest, local, remote })));
const kernelEvent = fc.oneof(connect, socketDup, exec, fork, exit, outbound, accept, credChange);
/** An event and the bytes its record carries past what its kind needs (a later, larger version of the record). */
const record = fc.record({ event: kernelEvent, slack: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 64 })) });

function tallyEvents(events: KernelEvent[]): void {
  for (const e of events) {
    tally(`kind:${e.kind}`);
    if (e.kind === "exec") for (const fd of e.stdio ?? []) tally(`fd:${fd.kind}`);
  }
}

function tallyDrops(dropped: Partial<Record<DecodeDropReason, number>>): void {
  for (const reason of Object.keys(dropped)) tally(`drop:${reason}`);
}

/** Byte offset of each record in a batch, and its declared (unpadded) size. */
function placesOf(records: Buffer[]): { at: number; size: number }[] {
  let at = 0;
  return records.map((r) => {
    const place = { at, size: r.length };
    at += (r.length + 7) & ~7;
    return place;
  });
}

describe("decoder fuzz (fast-check): kernel records round-trip through a test-side encoder", () => {
  it("every generated batch decodes back to the events it was encoded from, slack bytes ignored", () => {
    fc.assert(fc.property(fc.array(record, { maxLength: 12 }), (recs) => {
      const events = recs.map((r) => r.event);
      const decoded = decodeBatch(batchOf(recs.map((r) => encodeRecord(r.event, r.slack))), 0);
      expect(decoded.dropped).toEqual({});
      expect(decoded.events).toEqual(events);
      tallyEvents(events);
      if (recs.some((r) => r.slack > 0)) tally("oversized");
    }), { numRuns: RUNS });
  });

  it("a batch cut anywhere yields the records wholly before the cut, and one truncated_record when the cut is inside one", () => {
    fc.assert(fc.property(fc.array(record, { minLength: 1, maxLength: 6 }), fc.double({ min: 0, max: 1, noNaN: true }), (recs, where) => {
      const records = recs.map((r) => encodeRecord(r.event, r.slack));
      const buffer = batchOf(records);
      const limit = Math.floor(where * buffer.byteLength);
      const places = placesOf(records);
      const whole = places.filter((p) => p.at + p.size <= limit).length;
      const next = places[whole];
      const decoded = decodeBatch(buffer, 0, limit);
      expect(decoded.events).toEqual(recs.slice(0, whole).map((r) => r.event));
      expect(decoded.dropped).toEqual(next && next.at < limit ? { truncated_record: 1 } : {});
      tallyDrops(decoded.dropped);
    }), { numRuns: RUNS });
  });

  // One corrupted record in the middle of good ones: what the decoder must make of each kind of damage.
  type Damage = "unknown_kind" | "below_header" | "below_kind_minimum" | "exec_lengths_past_size";
  const damaged = fc.record({
    before: fc.array(record, { maxLength: 3 }), after: fc.array(record, { minLength: 1, maxLength: 3 }),
    damage: fc.constantFrom<Damage>("unknown_kind", "below_header", "below_kind_minimum", "exec_lengths_past_size"),
    victim: kernelEvent, unknownKind: fc.integer({ min: Math.max(...Object.values(EventKindCode)) + 1, max: 0xffff }), size: u16,
  });

  it("damage ends the batch where the size cannot be trusted, and skips only an unknown kind", () => {
    fc.assert(fc.property(damaged, ({ before, after, damage, victim, unknownKind, size }) => {
      let bad = encodeRecord(victim);
      switch (damage) {
        case "unknown_kind":
          bad.writeUInt16LE(unknownKind, LAYOUT.event_header.kind);
          break;
        case "below_header":
          bad = bad.subarray(0, 8);
          bad.writeUInt16LE(size % LAYOUT.event_header.sizeof, LAYOUT.event_header.size);
          break;
        case "below_kind_minimum": {
          const minimum = victim.kind === "exec" ? LAYOUT.exec_event.data : bad.length;
          bad = bad.subarray(0, LAYOUT.event_header.sizeof + (size % (minimum - LAYOUT.event_header.sizeof)));
          bad.writeUInt16LE(bad.length, LAYOUT.event_header.size);
          break;
        }
        case "exec_lengths_past_size":
          bad = encodeRecord({ ...victim, kind: "exec", filename: "/bin/sh", filenameTruncated: false, args: [], argsRaw: "",
            argsTruncated: false, loginUid: 0, stdio: [{ kind: "closed" }, { kind: "closed" }, { kind: "closed" }], capabilities: null });
          bad.writeUInt16LE(8 + (size % 64), LAYOUT.exec_event.args_len);
          break;
      }
      const records = [...before.map((r) => encodeRecord(r.event, r.slack)), bad, ...after.map((r) => encodeRecord(r.event, r.slack))];
      const decoded = decodeBatch(batchOf(records), 0);
      const good = before.map((r) => r.event);
      if (damage === "unknown_kind") {
        expect(decoded.events).toEqual([...good, ...after.map((r) => r.event)]);
        expect(decoded.dropped).toEqual({ unknown_kind: 1 });
      } else {
        expect(decoded.events).toEqual(good);
        expect(decoded.dropped).toEqual({ bad_record_size: 1 });
      }
      tallyDrops(decoded.dropped);
    }), { numRuns: RUNS });
  });

  it("arbitrary bytes behind plausible headers never throw, and every event decoded is one of the kernel's kinds", () => {
    const kinds = Object.values(EventKindCode);
    const header = fc.record({ kind: fc.oneof(fc.constantFrom(...kinds), u16), size: u16 });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 4096 }), fc.array(header, { maxLength: 8 }), (noise, headers) => {
      const bytes = Buffer.from(noise);
      let at = 0;
      for (const h of headers) {
        if (at + 4 > bytes.length) break;
        bytes.writeUInt16LE(h.kind, at);
        bytes.writeUInt16LE(h.size, at + 2);
        at += (h.size + 7) & ~7 || 8;
      }
      const decoded = decodeBatch(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length), 0);
      for (const e of decoded.events) expect(Object.keys(EventKindCode)).toContain(e.kind);
      tallyEvents(decoded.events as KernelEvent[]);
    }), { numRuns: RUNS });
  });

  it("the generators reached every record kind, every stdio fd kind, every drop reason and oversized records", () => {
    const wanted = [
      ...Object.keys(EventKindCode).map((k) => `kind:${k}`),
      ...Object.keys(FdKindCode).map((k) => `fd:${k}`),
      ...(["truncated_record", "bad_record_size", "unknown_kind"] satisfies DecodeDropReason[]).map((r) => `drop:${r}`),
      "oversized",
    ];
    expect(wanted.filter((w) => !reached.has(w))).toEqual([]);
  });
});
