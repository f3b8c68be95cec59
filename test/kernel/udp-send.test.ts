/**
 * udp_send (bpf/relay.bpf.c, cgroup/sendmsg4|6 on the cgroup v2 root): the first send of each UDP
 * socket that was never connected is an outbound record, named by the socket's inode, with the
 * destination of that send. Real python sockets against loopback; the relay cases themselves
 * are in relay-evasions.test.ts. Where the capability is skipped (as a host without cgroup v2,
 * or a kernel refusing the programs, passes it over) the sensor starts on its empty candidate.
 */
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OutboundEvent } from "sockeye";
import { PYTHON, Session, cgroup2Root, kernelTier, run, udpSendLive } from "./harness.js";

const tier = kernelTier();
const CANDIDATE = "cgroup/sendmsg{4,6}";

/**
 * Two loopback sinks, then three UDP sockets: an unconnected IPv4 one sending 50 datagrams, an
 * unconnected IPv6 one sending 5 (two of them with sendmsg), a connected one sending 10 with
 * send() and 10 with sendto() to its own peer. Prints its pid, the sinks' ports, then per
 * sender: inode, local port.
 */
const SENDERS = `
import os, socket
k4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); k4.bind(("127.0.0.1", 0)); p4 = k4.getsockname()[1]
k6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); k6.bind(("::1", 0)); p6 = k6.getsockname()[1]
v4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(50): v4.sendto(b"x", ("127.0.0.1", p4))
v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
for i in range(3): v6.sendto(b"x", ("::1", p6))
for i in range(2): v6.sendmsg([b"x"], [], 0, ("::1", p6))
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
c.connect(("127.0.0.1", p4))
for i in range(10): c.send(b"x")
for i in range(10): c.sendto(b"x", ("127.0.0.1", p4))
print(os.getpid(), p4, p6)
for s in (v4, v6, c): print(os.fstat(s.fileno()).st_ino, s.getsockname()[1])
`;

async function senders(): Promise<{ pid: number; sinks: [number, number]; sockets: { ino: number; port: number }[] }> {
  const r = await run(PYTHON, ["-c", SENDERS]);
  expect(r.status, r.stderr).toBe(0);
  const [head, ...lines] = r.stdout.trim().split("\n");
  const [pid, p4, p6] = head!.split(" ").map(Number) as [number, number, number];
  return { pid, sinks: [p4, p6], sockets: lines.map((l) => ({ ino: Number(l.split(" ")[0]), port: Number(l.split(" ")[1]) })) };
}

/** The programs attached to the cgroup v2 root, by name (bpftool cgroup show). */
function attachedToRoot(): string[] {
  const r = spawnSync("bpftool", ["-j", "cgroup", "show", cgroup2Root()!], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`bpftool cgroup show failed: ${r.stderr}`);
  // Nothing attached prints an empty line; each entry names its attach flags ("multi" for links).
  return (JSON.parse(r.stdout.trim() || "[]") as { name: string }[]).map((p) => p.name);
}

describe.runIf(tier.run)("kernel: udp_send, the first send of an unconnected UDP socket (cgroup/sendmsg4|6)", () => {
  let session: Session;
  beforeAll(async () => {
    session = await Session.open();
  });
  afterAll(() => session?.close());

  it("is live on this host's cgroup v2 root, attached beside whatever else is there", () => {
    if (!udpSendLive(session.sensor)) return;
    expect(attachedToRoot()).toEqual(expect.arrayContaining(["handle_sendmsg4", "handle_sendmsg6"]));
  });

  it("one record per unconnected socket (not per send), named by its inode, to where it sent; a connected socket's sends add none", async () => {
    if (!udpSendLive(session.sensor)) return;
    const { pid, sinks: [p4, p6], sockets } = await senders();
    await session.settle();
    const [v4, v6, connected] = sockets as [{ ino: number; port: number }, { ino: number; port: number }, { ino: number; port: number }];
    const outbound = session.of(pid).filter((e): e is OutboundEvent => e.kind === "outbound");
    const sent = outbound.filter((e) => e.unconnected === true);
    expect(sent.map((e) => [e.socketIno, e.family, e.fd, e.transport, e.remote, e.local.port])).toEqual([
      [v4.ino, "inet", -1, "udp", { address: "127.0.0.1", port: p4 }, v4.port],
      [v6.ino, "inet6", -1, "udp", { address: "::1", port: p6 }, v6.port],
    ]);
    // The connected one: its connect's record (fd 5, from the connect tracepoint), and nothing from its sends.
    expect(outbound.filter((e) => e.unconnected !== true).map((e) => [e.socketIno, e.transport, e.remote.port])).toEqual([[connected.ino, "udp", p4]]);
  }, 30_000);

  it("sendmmsg: each message passes the program, one record for the socket", async () => {
    if (!udpSendLive(session.sensor)) return;
    // sendmmsg(2) through libc (python has no binding): 4 messages with an address each; struct
    // mmsghdr is a 56-byte msghdr (4 bytes of padding after msg_flags) then msg_len.
    const r = await run(PYTHON, ["-c", `
import ctypes, os, socket
k = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); k.bind(("127.0.0.1", 0)); port = k.getsockname()[1]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
class Iov(ctypes.Structure): _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
class Msg(ctypes.Structure): _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.POINTER(Iov)), ("iovlen", ctypes.c_size_t),
    ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t), ("flags", ctypes.c_int), ("pad", ctypes.c_int), ("len", ctypes.c_uint)]
addr = ctypes.create_string_buffer(socket.AF_INET.to_bytes(2, "little") + port.to_bytes(2, "big") + socket.inet_aton("127.0.0.1") + bytes(8), 16)
data = ctypes.create_string_buffer(b"x")
iov = Iov(ctypes.cast(data, ctypes.c_void_p), 1)
msgs = (Msg * 4)(*[Msg(ctypes.cast(addr, ctypes.c_void_p), 16, ctypes.pointer(iov), 1, None, 0, 0, 0, 0) for _ in range(4)])
libc = ctypes.CDLL(None, use_errno=True)
n = libc.sendmmsg(s.fileno(), msgs, 4, 0)
assert n == 4, (n, ctypes.get_errno())
print(os.getpid(), os.fstat(s.fileno()).st_ino, port)`]);
    expect(r.status, r.stderr).toBe(0);
    const [pid, ino, port] = r.stdout.trim().split(" ").map(Number) as [number, number, number];
    await session.settle();
    const sent = session.of(pid).filter((e) => e.kind === "outbound" && e.unconnected === true) as OutboundEvent[];
    expect(sent.map((e) => [e.socketIno, e.remote.port])).toEqual([[ino, port]]);
  }, 30_000);

  it("a socket sent from again later costs no second record", async () => {
    if (!udpSendLive(session.sensor)) return;
    const r = await run(PYTHON, ["-c", `
import os, socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b"x", ("127.0.0.1", 9)); time.sleep(1.0); s.sendto(b"x", ("127.0.0.1", 12))
print(os.getpid())`]);
    await session.settle();
    const sent = session.of(Number(r.stdout.trim())).filter((e) => e.kind === "outbound" && e.unconnected === true) as OutboundEvent[];
    // The first send names the peer; a later one to another port is not a new record.
    expect(sent.map((e) => e.remote.port)).toEqual([9]);
  }, 30_000);
});

describe.runIf(tier.run)("kernel: udp_send passed over (no cgroup v2, or programs refused)", () => {
  let session: Session;
  beforeAll(async () => {
    session = await Session.open({ skipCandidates: [CANDIDATE] });
  });
  afterAll(() => session?.close());

  it("starts on the empty candidate, says why, and makes no record of unconnected sends", async () => {
    expect(session.sensor.liveProgram("udp_send")).toMatch(/^none: UDP sockets that send without connecting go unseen/);
    expect(session.sensor.programs.find((p) => p.capability === "udp_send" && p.program === CANDIDATE)).toMatchObject({ live: false, reason: "skipped by option" });
    const { pid } = await senders();
    await session.settle();
    expect(session.of(pid).filter((e) => e.kind === "outbound" && e.unconnected === true)).toEqual([]);
    // The connect of the connected socket is still seen: only this capability is off.
    expect(session.of(pid).filter((e) => e.kind === "outbound")).toHaveLength(1);
  }, 30_000);
});

describe.runIf(tier.run)("kernel: udp_send leaves nothing behind", () => {
  it("closing the sensor detaches its programs from the cgroup v2 root (BPF links, not a lasting attach)", async () => {
    const session = await Session.open();
    if (!udpSendLive(session.sensor)) {
      session.close();
      return;
    }
    const ours = () => attachedToRoot().filter((n) => n === "handle_sendmsg4" || n === "handle_sendmsg6").length;
    const before = ours();
    expect(before).toBeGreaterThanOrEqual(2);
    session.close();
    expect(ours()).toBe(before - 2);
  });
});
