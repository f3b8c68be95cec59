/**
 * The task_access variants for kernels older than this host's, forced here by skipping the
 * preferred ones (the VM tier proves them on Debian 11's 5.10 itself): before 5.15 there is
 * no bpf_task_pt_regs, so enter programs stash the syscall arguments the exit programs and
 * connect hooks need; before 5.11 there is no bpf_get_current_task_btf either, so the current
 * task is read field by field. Each variant must report what the preferred one does.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConnectEvent, ExecEvent, SocketDupEvent, TaskContext } from "sockeye";
import { Session, kernelTier, python, run, tcpListener, type TcpListener } from "./harness.js";

const tier = kernelTier();

const REGS = "bpf_get_current_task_btf + bpf_task_pt_regs";
const STASH_BTF = "bpf_get_current_task_btf + tp/syscalls/sys_enter_{connect,dup,dup2,dup3,fcntl}";
const STASH_HELPER = "bpf_get_current_task + tp/syscalls/sys_enter_{connect,dup,dup2,dup3,fcntl}";

const VARIANTS = [
  { live: STASH_BTF, skip: [REGS], kernels: "5.11 to 5.14" },
  { live: STASH_HELPER, skip: [REGS, STASH_BTF], kernels: "5.8 to 5.10" },
];

for (const variant of VARIANTS) describe.runIf(tier.run)(`kernel: task_access as on ${variant.kernels} (${variant.live})`, () => {
  let session: Session;
  let tcp: TcpListener;

  beforeAll(async () => {
    session = await Session.open({ skipCandidates: variant.skip });
    tcp = await tcpListener();
  });
  afterAll(async () => {
    session?.close();
    await tcp?.close();
  });

  const inetDups = (pid: number) => session.of(pid).filter((e): e is SocketDupEvent => e.kind === "socket_dup" && e.family !== "unix");

  it("the sensor runs this variant, and the rest as on this kernel", () => {
    expect(session.sensor.liveProgram("task_access")).toBe(variant.live);
    expect(session.sensor.liveProgram("connect")).toBe("tp/syscalls/sys_exit_connect");
    expect(session.sensor.liveProgram("socket_dup")).toBe("tp/syscalls/sys_exit_{dup,dup2,dup3,fcntl}");
  });

  const dupCases: { name: string; code: string; syscall: SocketDupEvent["syscall"]; newfd: number }[] = [
    { name: "dup onto a closed fd 0", code: "os.close(0); ctypes.CDLL(None).dup(c.fileno())", syscall: "dup", newfd: 0 },
    { name: "dup2 onto fd 1", code: "os.dup2(c.fileno(), 1)", syscall: "dup2", newfd: 1 },
    { name: "dup3 onto fd 0", code: "os.dup2(c.fileno(), 0, inheritable=False)", syscall: "dup3", newfd: 0 },
    { name: "fcntl(F_DUPFD_CLOEXEC) onto a closed fd 1", code: "os.close(1); fcntl.fcntl(c.fileno(), fcntl.F_DUPFD_CLOEXEC, 0)", syscall: "fcntl", newfd: 1 },
  ];
  for (const c of dupCases) {
    it(`socket_dup: ${c.name}, with the old fd and the task's context`, async () => {
      const child = await python(
        `import os, socket, fcntl, ctypes\nc = socket.create_connection(("127.0.0.1", ${tcp.port}))\nold = c.fileno()\n${c.code}\nos.write(2, str(old).encode())`,
      );
      expect(child.status, child.stderr).toBe(0);
      await session.settle();
      const dups = inetDups(child.pid);
      expect(dups).toHaveLength(1);
      expect(dups[0]).toMatchObject({
        syscall: c.syscall, newfd: c.newfd, oldfd: Number(child.stderr), family: "inet", origin: "connected",
        remote: { address: "127.0.0.1", port: tcp.port },
      });
      // Read through the task pointer this variant gets (its own helper, or the CO-RE reads).
      expect(dups[0]!.task).toMatchObject<Partial<TaskContext>>({ pid: child.pid, tid: child.pid, ppid: process.pid, uid: 0, gid: 0, comm: "python3", parentComm: readFileSync(`/proc/${process.pid}/comm`, "utf8").trim() });
      expect(dups[0]!.task.startNs).toBeGreaterThan(0);
    });
  }

  it("no stale arguments: an F_DUPFD that lands past stdio, then fcntl(0, F_GETFD) returning 0 with a socket on fd 0, is one dup2 and nothing else", async () => {
    // The F_DUPFD (lowest fd 0, all of 0-2 taken) is stashed at enter and its exit, past
    // stdio, does not look; F_GETFD returns 0, a stdio fd, holding a socket: its exit must
    // not take the F_DUPFD's arguments for its own.
    const child = await python(
      [
        "import os, socket, fcntl",
        `c = socket.create_connection(("127.0.0.1", ${tcp.port}))`,
        "os.dup2(c.fileno(), 0)",
        "assert fcntl.fcntl(c.fileno(), fcntl.F_DUPFD, 0) > 2",
        "assert fcntl.fcntl(0, fcntl.F_GETFD) == 0",
        "os.dup2(c.fileno(), 7)", // a dup2 past stdio, stashed by nobody, read by nobody
      ].join("\n"),
    );
    expect(child.status, child.stderr).toBe(0);
    await session.settle();
    expect(inetDups(child.pid).map((e) => [e.syscall, e.newfd])).toEqual([["dup2", 0]]);
  });

  it("a failed dup3 onto fd 1 and a file onto fd 1 stay silent", async () => {
    const child = await python(
      [
        "import os, socket, ctypes",
        `c = socket.create_connection(("127.0.0.1", ${tcp.port}))`,
        "os.dup2(os.open('/etc/hostname', os.O_RDONLY), 1)",
        "libc = ctypes.CDLL(None, use_errno=True)",
        "assert libc.dup3(c.fileno(), 1, 0x7fff) == -1 and ctypes.get_errno() == 22",
      ].join("\n"),
    );
    expect(child.status, child.stderr).toBe(0);
    await session.settle();
    expect(inetDups(child.pid)).toEqual([]);
  });

  it("connect on fd 0 carries its fd, address and result; one on fd 3 never leaves the kernel", async () => {
    const on0 = await python(`import os, socket\nos.close(0)\ns = socket.socket()\nassert s.fileno() == 0\ns.connect(("127.0.0.1", ${tcp.port}))`);
    const on3 = await python(`import socket\ns = socket.create_connection(("127.0.0.1", ${tcp.port}))\nassert s.fileno() == 3`);
    expect([on0.status, on3.status]).toEqual([0, 0]);
    await session.settle();
    const connects = session.of(on0.pid).filter((e): e is ConnectEvent => e.kind === "connect");
    expect(connects).toHaveLength(1);
    expect(connects[0]).toMatchObject({ fd: 0, result: 0, family: "inet", source: "tracepoint", remote: { address: "127.0.0.1", port: tcp.port } });
    expect(connects[0]!.task).toMatchObject({ pid: on0.pid, comm: "python3" });
    expect(session.of(on3.pid).filter((e) => e.kind === "connect")).toEqual([]);
  });

  it("a shell started on a socket: its exec record holds the socket on fds 0-2", async () => {
    const r = await run("/bin/bash", ["-c", `exec 3<>/dev/tcp/127.0.0.1/${tcp.port}; /bin/sh -c 'exit 0' <&3 >&3 2>&3`]);
    expect(r.status, r.stderr).toBe(0);
    await session.settle();
    const sh = session.events.find((e): e is ExecEvent => e.kind === "exec" && e.filename === "/bin/sh" && e.task.ppid === r.pid);
    expect(sh).toBeDefined();
    expect(sh!.stdio!.map((s) => s.kind)).toEqual(["inet", "inet", "inet"]);
  });

  it("nothing lost, no hook counted an error", () => {
    for (const [hook, c] of Object.entries(session.sensor.counters())) {
      expect({ hook, lost: c.lost, errors: c.errors }).toEqual({ hook, lost: 0, errors: 0 });
    }
  });
});
