import { describe, expect, it } from "vitest";
import { ARG_OVERHEAD_BYTES, ARGV_KEPT_BYTES, decodeBatch, formatIPv6, splitArgs } from "../../../src/sensor/decode.js";
import { LAYOUT, EventKindCode } from "../../../src/sensor/layout.js";

/** Writes records the way the kernel does: header, task context, kind-specific fields. */
class BatchBuilder {
  private parts: Buffer[] = [];
  record(kind: number, size: number, fill: (b: Buffer) => void, declaredSize = size): this {
    const b = Buffer.alloc((size + 7) & ~7);
    b.writeUInt16LE(kind, 0);
    b.writeUInt16LE(declaredSize, 2);
    b.writeBigUInt64LE(5_000_000_000n, 8);
    const t = LAYOUT.task_context, at = 16;
    b.writeUInt32LE(4242, at + t.pid);
    b.writeUInt32LE(4243, at + t.tid);
    b.writeUInt32LE(1, at + t.ppid);
    b.writeUInt32LE(1000, at + t.uid);
    b.write("bash", at + t.comm);
    b.write("sshd", at + t.parent_comm);
    fill(b);
    this.parts.push(b);
    return this;
  }
  buffer(): ArrayBuffer {
    const all = Buffer.concat(this.parts);
    return all.buffer.slice(all.byteOffset, all.byteOffset + all.length);
  }
}

const D = LAYOUT.socket_dup_event;
const C = LAYOUT.connect_event;
const X = LAYOUT.exec_event;

function dupRecord(b: BatchBuilder, declaredSize: number = D.sizeof) {
  return b.record(EventKindCode.socket_dup, D.sizeof, (r) => {
    r.writeInt32LE(3, D.oldfd);
    r.writeInt32LE(1, D.newfd);
    r.writeUInt16LE(2, D.syscall);
    r.writeUInt16LE(2, D.family);
    r.writeUInt16LE(1, D.sock_type);
    r.writeUInt16LE(6, D.protocol);
    r.writeUInt8(2, D.origin);
    Buffer.from([10, 0, 0, 1]).copy(r, D.remote);
    r.writeUInt16LE(4444, D.remote + LAYOUT.sock_endpoint.port);
  }, declaredSize);
}

describe("decodeBatch", () => {
  // bpf/relay.bpf.c: a connect past stdio leaves the socket TCP_ESTABLISHED (1) or SYN_SENT (2);
  // the first send of a never-connected UDP socket (cgroup/sendmsg) writes TCP_CLOSE (7), fd -1.
  it("an outbound record of a UDP socket in TCP_CLOSE is its first unconnected send; TCP and connected UDP are not", () => {
    const O = LAYOUT.outbound_event;
    const outbound = (b: BatchBuilder, protocol: number, state: number, fd: number) =>
      b.record(EventKindCode.outbound, O.sizeof, (r) => {
        r.writeInt32LE(fd, O.fd);
        r.writeUInt32LE(777, O.sock_ino);
        r.writeUInt16LE(2, O.family);
        r.writeUInt8(state, O.state);
        r.writeUInt8(protocol, O.protocol);
        Buffer.from([127, 0, 0, 1]).copy(r, O.remote);
        r.writeUInt16LE(5353, O.remote + LAYOUT.sock_endpoint.port);
      });
    const b = new BatchBuilder();
    outbound(b, 17, 7, -1);
    outbound(b, 17, 1, 5);
    outbound(b, 6, 7, 5);
    const { events } = decodeBatch(b.buffer(), 0);
    expect(events.map((e) => e.kind === "outbound" && [e.transport, e.fd, e.unconnected])).toEqual([["udp", -1, true], ["udp", 5, undefined], ["tcp", 5, undefined]]);
    expect(events[0]).toMatchObject({ socketIno: 777, family: "inet", remote: { address: "127.0.0.1", port: 5353 } });
    expect("unconnected" in events[1]!).toBe(false);
  });

  it("decodes a socket_dup record with its task context", () => {
    const { events, dropped } = decodeBatch(dupRecord(new BatchBuilder()).buffer(), 0);
    expect(dropped).toEqual({});
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      kind: "socket_dup", syscall: "dup2", oldfd: 3, newfd: 1, family: "inet", socketType: "stream", protocol: 6,
      origin: "connected", remote: { address: "10.0.0.1", port: 4444 }, timeNs: 5e9, timeMs: 5000,
      task: { pid: 4242, tid: 4243, ppid: 1, uid: 1000, comm: "bash", parentComm: "sshd" },
    });
  });

  it("names, addresses and 64-bit numbers stay exact across the decoder's caches", () => {
    // Many records, names of equal length and one of the full 16 bytes (no NUL), different
    // addresses: every record must decode to its own bytes, not a cached neighbour's.
    const names = ["bash", "dash", "zsh", "sockeye-loadgen", "0123456789abcdef", "a", "b", "café"];
    const b = new BatchBuilder();
    const t = LAYOUT.task_context;
    for (let i = 0; i < 200; i++) {
      b.record(EventKindCode.socket_dup, D.sizeof, (r) => {
        r.fill(0, 16 + t.comm, 16 + t.comm + 32);
        r.write(names[i % names.length]!, 16 + t.comm);
        r.write(names[(i + 3) % names.length]!, 16 + t.parent_comm);
        r.writeBigUInt64LE(2n ** 40n + BigInt(i), 16 + t.cgroup_id);
        r.writeBigUInt64LE(2n ** 60n + 12345n, 16 + t.start_ns);
        r.writeBigUInt64LE(BigInt(i) * 1_000_000_007n, 8);
        r.writeUInt16LE(2, D.family);
        Buffer.from([127, 0, i % 7, i % 251]).copy(r, D.remote);
        Buffer.from([10, 1, 2, 3]).copy(r, D.local);
      });
    }
    const { events } = decodeBatch(b.buffer(), 0);
    expect(events).toHaveLength(200);
    events.forEach((e, i) => {
      expect(e.task.comm).toBe(names[i % names.length]);
      expect(e.task.parentComm).toBe(names[(i + 3) % names.length]);
      expect(e.task.cgroupId).toBe(2 ** 40 + i);
      expect(e.task.startNs).toBe(Number(2n ** 60n + 12345n));
      expect(e.timeNs).toBe(i * 1_000_000_007);
      expect(e.kind === "socket_dup" && e.remote?.address).toBe(`127.0.${i % 7}.${i % 251}`);
      expect(e.kind === "socket_dup" && e.local?.address).toBe("10.1.2.3");
    });
  });

  it("decodes connect: unknown result is null, abstract unix names get '@'", () => {
    const b = new BatchBuilder().record(EventKindCode.connect, C.sizeof, (r) => {
      r.writeInt32LE(-1, C.fd);
      r.writeInt32LE(0x7fffffff, C.result);
      r.writeUInt16LE(1, C.family);
      r.writeUInt8(1, C.source);
      Buffer.from("\0hidden").copy(r, C.unix_path);
    });
    const [e] = decodeBatch(b.buffer(), 0).events;
    expect(e).toMatchObject({ kind: "connect", fd: -1, result: null, family: "unix", source: "lsm", remote: null, unixPath: "@hidden" });
  });

  it("decodes a variable-size exec record and keeps raw argv bytes", () => {
    const args = Buffer.from([...Buffer.from("nohup\0caf"), 0xe9, 0]);
    const size = X.data + 9 + args.length;
    const b = new BatchBuilder().record(EventKindCode.exec, size, (r) => {
      r.writeUInt16LE(9, X.filename_len);
      r.writeUInt16LE(args.length, X.args_len);
      r.write("/bin/true", X.data);
      args.copy(r, X.data + 9);
    });
    dupRecord(b);
    const { events } = decodeBatch(b.buffer(), 0);
    expect(events.map((e) => e.kind)).toEqual(["exec", "socket_dup"]);
    expect(events[0]).toMatchObject({ filename: "/bin/true", args: ["nohup", "caf\ufffd"], argsTruncated: false });
    expect(Buffer.from((events[0] as { argsRaw: string }).argsRaw, "base64")).toEqual(args);
  });

  it("counts an unknown kind and goes on with the next record", () => {
    const b = new BatchBuilder().record(99, 96, () => {});
    dupRecord(b);
    const { events, dropped } = decodeBatch(b.buffer(), 0);
    expect(events.map((e) => e.kind)).toEqual(["socket_dup"]);
    expect(dropped).toEqual({ unknown_kind: 1 });
  });

  it("a record running past the batch ends it, counted, without a crash", () => {
    const buf = dupRecord(new BatchBuilder()).buffer();
    const { events, dropped } = decodeBatch(buf, 0, buf.byteLength - 8);
    expect(events).toEqual([]);
    expect(dropped).toEqual({ truncated_record: 1 });
  });

  it("a size smaller than its kind's record is counted as bad", () => {
    const { events, dropped } = decodeBatch(dupRecord(new BatchBuilder(), 32).buffer(), 0);
    expect(events).toEqual([]);
    expect(dropped).toEqual({ bad_record_size: 1 });
  });
});

describe("formatIPv6 and splitArgs", () => {
  it.each([
    ["::1", [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]],
    ["::ffff:127.0.0.1", [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1]],
    ["2001:db8::1:0:0:1", [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1]],
    ["2001:db8:0:1:1:1:1:1", [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1]],
  ])("%s", (text, bytes) => {
    expect(formatIPv6(Uint8Array.from(bytes))).toBe(text);
  });

  it("splits NUL-terminated argv and keeps a cut-off last element", () => {
    expect(splitArgs(Buffer.from("a\0bc\0de"))).toEqual({ args: ["a", "bc", "de"], cut: false });
    expect(splitArgs(Buffer.from("a\0\0"))).toEqual({ args: ["a", ""], cut: false });
    expect(splitArgs(Buffer.from("\0"))).toEqual({ args: [""], cut: false });
    expect(splitArgs(Buffer.alloc(ARGV_KEPT_BYTES / ARG_OVERHEAD_BYTES))).toEqual({ args: new Array(ARGV_KEPT_BYTES / ARG_OVERHEAD_BYTES).fill(""), cut: false });
    expect(splitArgs(Buffer.alloc(ARGV_KEPT_BYTES / ARG_OVERHEAD_BYTES + 1)).cut).toBe(true);
    expect(splitArgs(Buffer.from(""))).toEqual({ args: [], cut: false });
  });

  it("invalid UTF-8 becomes U+FFFD within its own element, as decoded element by element", () => {
    const raw = Buffer.from([0x63, 0xe9, 0, 0xf0, 0x9f, 0, 0x41, 0]);
    expect(splitArgs(raw).args).toEqual(["c\ufffd", "\ufffd", "A"]);
  });

  it("argv kept is bounded by bytes: 4,095 one-byte arguments are cut and flagged, argsRaw keeps every byte", () => {
    const argv = ["/bin/true", ...Array.from({ length: 4094 }, () => "a")];
    const raw = Buffer.from(argv.map((a) => `${a}\0`).join(""));
    const { args, cut } = splitArgs(raw);
    expect(cut).toBe(true);
    expect(args.slice(0, 2)).toEqual(["/bin/true", "a"]);
    const cost = args.reduce((n, a) => n + a.length + ARG_OVERHEAD_BYTES, 0);
    expect(cost).toBeLessThanOrEqual(ARGV_KEPT_BYTES);
    expect(cost + 1 + ARG_OVERHEAD_BYTES).toBeGreaterThan(ARGV_KEPT_BYTES); // it stopped at the first that did not fit

    const size = X.data + 9 + raw.length;
    const b = new BatchBuilder().record(EventKindCode.exec, size, (r) => {
      r.writeUInt16LE(9, X.filename_len);
      r.writeUInt16LE(raw.length, X.args_len);
      r.write("/bin/true", X.data);
      raw.copy(r, X.data + 9);
    });
    const [e] = decodeBatch(b.buffer(), 0).events;
    expect(e).toMatchObject({ kind: "exec", argsTruncated: true });
    expect(Buffer.from((e as { argsRaw: string }).argsRaw, "base64")).toEqual(raw);
  });

  it("an ordinary long command line (the kernel's 8 KiB in 100 arguments) is kept whole", () => {
    const argv = Array.from({ length: 100 }, (_, i) => `--option-${i}=${"v".repeat(60)}`);
    const { args, cut } = splitArgs(Buffer.from(argv.map((a) => `${a}\0`).join("")));
    expect(cut).toBe(false);
    expect(args).toEqual(argv);
  });
});
