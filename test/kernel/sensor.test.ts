/**
 * Each hook against real syscalls on this host's kernel (root). No mocks here.
 */
import { spawn, spawnSync } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openSensorSync, probe, SensorError, type ConnectEvent, type ExecEvent, type SocketDupEvent } from "sockeye";
import { SHELL_NAMES } from "../../src/sensor/shells.js";
import { Session, kernelTier, python, run, tcpListener, udpListener, PYTHON, type TcpListener } from "./harness.js";

const tier = kernelTier();

describe.runIf(tier.run)("kernel: sensor hooks", () => {
  let session: Session;
  let tcp: TcpListener;

  beforeAll(async () => {
    session = await Session.open();
    tcp = await tcpListener();
  });
  afterAll(async () => {
    session?.close();
    await tcp?.close();
  });

  it("probe reports connect on its tracepoint fallback here, and why LSM and fentry were passed over", () => {
    const report = probe();
    expect(report.error).toBeNull();
    const connect = report.candidates.filter((c) => c.capability === "connect");
    expect(connect.map((c) => c.program)).toEqual([
      "lsm/socket_connect",
      "fentry/security_socket_connect",
      "tp/syscalls/sys_exit_connect",
    ]);
    // docs/design.md §1: this host refuses BPF trampolines, so LSM and fentry load with EPERM.
    expect(connect[0]).toMatchObject({ live: false, reason: expect.stringMatching(/load failed: .*Operation not permitted/) as unknown });
    expect(connect[1]).toMatchObject({ live: false, reason: expect.stringMatching(/load failed/) as unknown });
    expect(connect[2]).toMatchObject({ live: true, reason: "" });
    expect(report.candidates.filter((c) => c.live).map((c) => c.capability).sort()).toEqual(["accept", "connect", "cred_change", "process", "relay", "socket_dup", "task_access", "udp_send"]);
    // 6.18 has both helpers the programs prefer: no enter program stashes arguments here.
    expect(report.features.helpers).toEqual({ bpf_get_current_task_btf: "yes", bpf_task_pt_regs: "yes" });
    expect(session.sensor.liveProgram("task_access")).toBe("bpf_get_current_task_btf + bpf_task_pt_regs");
    expect(session.sensor.liveProgram("connect")).toBe("tp/syscalls/sys_exit_connect");
  });

  // /proc/self/task/TID/stat: comm in parentheses, then fields 3.. ; 40 rt_priority, 41 policy.
  const SCHED_OTHER = 0, SCHED_RR = 2;
  const threadPolicy = (tid: number | string) => {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { tid: Number(tid), comm: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")), rtPriority: Number(fields[40 - 3]), policy: Number(fields[41 - 3]) };
  };
  const readers = () => readdirSync("/proc/self/task").map(threadPolicy).filter((t) => t.comm === "sockeye-reader");

  it("the ring reader is a thread named sockeye-reader under SCHED_RR 1, or normal when asked", async () => {
    expect(session.sensor.scheduling()).toEqual({ reader: "SCHED_RR 1", eventLoop: "normal" });
    const before = readers();
    expect(before).toHaveLength(1);
    expect(before[0]).toMatchObject({ policy: SCHED_RR, rtPriority: 1 });
    // The event loop is the application's: left alone unless asked.
    expect(threadPolicy(process.pid)).toMatchObject({ policy: SCHED_OTHER });

    const plain = openSensorSync({ readerRealtime: false });
    expect(plain.scheduling()).toBeNull(); // no thread before the first subscriber
    plain.subscribe(() => {});
    try {
      expect(plain.scheduling()).toEqual({ reader: "normal", eventLoop: "normal" });
      const added = readers().filter((r) => !before.some((b) => b.tid === r.tid));
      expect(added).toHaveLength(1);
      expect(added[0]).toMatchObject({ policy: SCHED_OTHER, rtPriority: 0 });
    } finally {
      await plain.close();
    }
    expect(readers()).toHaveLength(1);
    expect(plain.scheduling()).toEqual({ reader: "normal", eventLoop: "normal" }); // still told after close
  });

  it("eventLoopRealtime: SCHED_RR 1 while calm, normal once busy, real-time again after 5 s calm, normal after close", async () => {
    const sensor = openSensorSync({ eventLoopRealtime: true });
    sensor.subscribe(() => {});
    try {
      expect(sensor.scheduling()).toEqual({ reader: "SCHED_RR 1", eventLoop: "SCHED_RR 1 while calm" });
      expect(threadPolicy(process.pid)).toMatchObject({ policy: SCHED_RR, rtPriority: 1 });
      // Busy: the event loop spins for 800 ms; the reader thread checks it every 250 ms.
      const spinUntil = Date.now() + 800;
      while (Date.now() < spinUntil);
      await new Promise((r) => setTimeout(r, 50));
      expect(sensor.scheduling()?.eventLoop).toBe("normal: busy (1 times so far)");
      expect(threadPolicy(process.pid)).toMatchObject({ policy: SCHED_OTHER, rtPriority: 0 });
      await new Promise((r) => setTimeout(r, 6500));
      expect(sensor.scheduling()?.eventLoop).toBe("SCHED_RR 1 while calm");
      expect(threadPolicy(process.pid)).toMatchObject({ policy: SCHED_RR, rtPriority: 1 });
    } finally {
      await sensor.close();
    }
    expect(threadPolicy(process.pid)).toMatchObject({ policy: SCHED_OTHER, rtPriority: 0 });
    // Exactly as it was: not even the reset-on-fork flag sockeye set while real-time is left.
    expect(spawnSync("chrt", ["-p", String(process.pid)], { encoding: "utf8" }).stdout).toMatch(/policy: SCHED_OTHER\n/);
    expect(sensor.scheduling()).toEqual({ reader: "SCHED_RR 1", eventLoop: "SCHED_RR 1 while calm" }); // as it ran
  }, 15_000);

  it("each batch says how long it waited for the event loop: one queued while the loop is held 400 ms waited most of it", async () => {
    const waits: { events: number; waitedMs: number; at: number }[] = [];
    const unsubscribe = session.sensor.subscribe((events, waitedMs) => waits.push({ events: events.length, waitedMs, at: performance.now() }));
    try {
      await session.settle(); // a free loop: batches are taken as they come
      const free = waits.filter((w) => w.events > 0).map((w) => w.waitedMs);
      expect(free.length).toBeGreaterThan(0);
      const held = waits.length;
      // An exec now, then the loop held: the reader queues the exec's batch within ~100 ms,
      // and it waits there until the spin ends.
      spawn("/bin/true", { stdio: "ignore" });
      const spinStart = performance.now();
      while (performance.now() - spinStart < 400);
      const spinEnd = performance.now();
      await session.settle();
      const after = waits.slice(held).filter((w) => w.events > 0);
      const first = after[0];
      expect(first, "a batch after the spin").toBeDefined();
      expect(first!.at).toBeGreaterThanOrEqual(spinEnd);
      // Queued at most ~150 ms into the spin (a loaded host's reader may be late): waited >= 250.
      expect(first!.waitedMs).toBeGreaterThanOrEqual(250);
      console.log(JSON.stringify({ freeLoopWaitsMs: free.map((w) => Math.round(w * 100) / 100), heldLoopWaitMs: Math.round(first!.waitedMs) }));
      expect(Math.min(...free)).toBeLessThan(50);
    } finally {
      unsubscribe();
    }
  });

  it("eventLoopRealtime: a second sensor on the same event loop leaves it to the first", async () => {
    const first = openSensorSync({ eventLoopRealtime: true });
    const second = openSensorSync({ eventLoopRealtime: true });
    first.subscribe(() => {});
    second.subscribe(() => {});
    try {
      expect(first.scheduling()?.eventLoop).toBe("SCHED_RR 1 while calm");
      expect(second.scheduling()?.eventLoop).toBe("left as it was (another sensor manages this thread)");
      await second.close();
      expect(threadPolicy(process.pid)).toMatchObject({ policy: SCHED_RR, rtPriority: 1 }); // still the first's
    } finally {
      await second.close();
      await first.close();
    }
    expect(threadPolicy(process.pid)).toMatchObject({ policy: SCHED_OTHER, rtPriority: 0 });
  });

  const dupCases: { name: string; code: string; syscall: SocketDupEvent["syscall"]; newfd: number }[] = [
    // os.dup() is fcntl(F_DUPFD_CLOEXEC) in CPython: libc's dup() is the dup syscall itself.
    { name: "dup onto a closed fd 0", code: "os.close(0); ctypes.CDLL(None).dup(c.fileno())", syscall: "dup", newfd: 0 },
    { name: "python os.dup onto a closed fd 0", code: "os.close(0); os.dup(c.fileno())", syscall: "fcntl", newfd: 0 },
    { name: "dup2 onto fd 1", code: "os.dup2(c.fileno(), 1)", syscall: "dup2", newfd: 1 },
    { name: "dup3 onto fd 2 (dup2 inheritable=False)", code: "os.dup2(c.fileno(), 2, inheritable=False)", syscall: "dup3", newfd: 2 },
    { name: "fcntl(F_DUPFD) onto a closed fd 0", code: "os.close(0); fcntl.fcntl(c.fileno(), fcntl.F_DUPFD, 0)", syscall: "fcntl", newfd: 0 },
    { name: "fcntl(F_DUPFD_CLOEXEC) onto a closed fd 1", code: "os.close(1); fcntl.fcntl(c.fileno(), fcntl.F_DUPFD_CLOEXEC, 0)", syscall: "fcntl", newfd: 1 },
    // The kernel reads fcntl's command as an unsigned int: bits above 32 must not hide F_DUPFD
    // (raw syscall 72 = fcntl on x86-64; ctypes passes c_long as all 64 bits).
    { name: "raw fcntl with F_DUPFD | 1 << 32 onto a closed fd 0", code: "os.close(0); ctypes.CDLL(None).syscall(ctypes.c_long(72), ctypes.c_long(c.fileno()), ctypes.c_long((1 << 32) | fcntl.F_DUPFD), ctypes.c_long(0))", syscall: "fcntl", newfd: 0 },
  ];
  for (const c of dupCases) {
    it(`socket_dup: ${c.name}`, async () => {
      const child = await python(
        `import os, socket, fcntl, ctypes\nc = socket.create_connection(("127.0.0.1", ${tcp.port}))\nold = c.fileno()\n${c.code}\nos.write(2, str(old).encode())`,
      );
      await session.settle();
      // node hands the child its stdio as AF_UNIX socketpairs: those dups are real, and not ours.
      const dups = session.of(child.pid).filter((e): e is SocketDupEvent => e.kind === "socket_dup" && e.family !== "unix");
      expect(dups).toHaveLength(1);
      const e = dups[0]!;
      expect(e).toMatchObject({
        syscall: c.syscall, newfd: c.newfd, family: "inet", socketType: "stream", protocol: 6, origin: "connected",
        remote: { address: "127.0.0.1", port: tcp.port },
      });
      expect(e.local?.address).toBe("127.0.0.1");
      expect(e.local?.port).toBeGreaterThan(0);
      if (c.newfd !== 2) expect(e.oldfd).toBe(Number(child.stderr));
      expect(e.task.comm).toBe("python3");
      expect(e.task.uid).toBe(0);
    });
  }

  it("socket_dup stays silent for a non-socket, a socket onto fd 5, and a failed dup3", async () => {
    const child = await python(
      [
        "import os, socket, ctypes",
        `c = socket.create_connection(("127.0.0.1", ${tcp.port}))`,
        "f = os.open('/etc/hostname', os.O_RDONLY)",
        "os.dup2(f, 1)",          // a file onto stdout
        "os.dup2(c.fileno(), 5)", // a socket past stdio
        "libc = ctypes.CDLL(None, use_errno=True)",
        "assert libc.dup3(c.fileno(), 1, 0x7fff) == -1 and ctypes.get_errno() == 22", // EINVAL
      ].join("\n"),
    );
    expect(child.status).toBe(0);
    await session.settle();
    expect(session.of(child.pid).filter((e) => e.kind === "socket_dup" && e.family !== "unix")).toEqual([]);
  });

  it("connect on fd 0 over IPv4 carries fd, address, port and result", async () => {
    const child = await python(`import os, socket\nos.close(0)\ns = socket.socket()\nassert s.fileno() == 0\ns.connect(("127.0.0.1", ${tcp.port}))`);
    expect(child.status).toBe(0);
    await session.settle();
    const connects = session.of(child.pid).filter((e): e is ConnectEvent => e.kind === "connect");
    expect(connects).toHaveLength(1);
    expect(connects[0]).toMatchObject({
      fd: 0, result: 0, family: "inet", socketType: "stream", source: "tracepoint",
      remote: { address: "127.0.0.1", port: tcp.port },
    });
  });

  it("connect on fd 3 never leaves the kernel by default", async () => {
    const child = await python(`import socket\ns = socket.create_connection(("127.0.0.1", ${tcp.port}))\nassert s.fileno() == 3`);
    expect(child.status).toBe(0);
    await session.settle();
    expect(session.of(child.pid).filter((e) => e.kind === "connect")).toEqual([]);
  });

  it("exec of long and non-UTF-8 arguments: bytes kept, truncation flagged", async () => {
    const long = "A".repeat(10_000);
    const child = await python(
      `import subprocess\nsubprocess.run([b"/bin/true", b"caf\\xe9\\xff", b"${long}"])`,
    );
    expect(child.status).toBe(0);
    await session.settle();
    const exec = session.events.find(
      (e): e is ExecEvent => e.kind === "exec" && e.task.ppid === child.pid && e.filename === "/bin/true",
    );
    expect(exec).toBeDefined();
    expect(exec!.argsTruncated).toBe(true);
    const raw = Buffer.from(exec!.argsRaw, "base64");
    expect(raw.length).toBe(8191);
    expect(raw.subarray(0, 16)).toEqual(Buffer.from([...Buffer.from("/bin/true\0caf"), 0xe9, 0xff, 0]));
    expect(exec!.args[0]).toBe("/bin/true");
    expect(exec!.args[1]).toBe("caf\ufffd\ufffd");
    expect(exec!.args[2]).toMatch(/^A+$/);
    expect(exec!.task.parentComm).toBe("python3");
  });

  it("every record carries the task's namespaces and its pid inside its pid namespace", async () => {
    const inum = (ns: string) => Number(/\[(\d+)\]/.exec(readlinkSync(`/proc/self/ns/${ns}`))![1]);
    // A shell in new pid, mount and network namespaces: it is pid 1 there, and execs /bin/true as pid 2.
    const child = await run("unshare", ["--pid", "--net", "--mount", "--fork", "--mount-proc", "/bin/sh", "-c", "/bin/true; readlink /proc/self/ns/pid /proc/self/ns/mnt /proc/self/ns/net"]);
    expect(child.status, child.stderr).toBe(0);
    const [pidNs, mntNs, netNs] = child.stdout.trim().split("\n").map((l) => Number(/\[(\d+)\]/.exec(l)![1]));
    await session.settle();
    const inside = session.events.find((e): e is ExecEvent => e.kind === "exec" && e.filename === "/bin/true" && e.task.pidNs === pidNs);
    expect(inside, "the exec of /bin/true in the new namespaces").toBeDefined();
    expect(inside!.task).toMatchObject({ nsPid: 2, pidNs, mntNs, netNs });
    expect(inside!.task.pid).not.toBe(2);
    expect([pidNs, mntNs, netNs]).not.toEqual([inum("pid"), inum("mnt"), inum("net")]);
    // The host's own: the runner's exec of unshare, with its pid as the host sees it.
    const outside = session.events.find((e): e is ExecEvent => e.kind === "exec" && e.task.pid === child.pid);
    expect(outside?.task).toMatchObject({ nsPid: child.pid, pidNs: inum("pid"), mntNs: inum("mnt"), netNs: inum("net") });
  });

  it("fork and exit of a child process", async () => {
    const child = await python("import os, sys\npid = os.fork()\nif pid == 0: os._exit(7)\nos.waitpid(pid, 0)\nprint(pid)");
    await session.settle();
    const forked = Number(child.stdout.trim());
    const fork = session.events.find((e) => e.kind === "fork" && e.task.pid === forked);
    expect(fork?.task.ppid).toBe(child.pid);
    const exit = session.events.find((e) => e.kind === "exit" && e.task.pid === forked);
    expect(exit).toMatchObject({ kind: "exit", exitCode: 7 << 8 });
    expect(exit!.task.startNs).toBe(fork!.task.startNs);
  });

  it("the loaded object holds the TypeScript shell list, frozen, and rings of the sizes asked for", async () => {
    const sized = openSensorSync({ relayRingBytes: 1 << 16, processRingBytes: 1 << 21, detectionRingBytes: 1 << 18 });
    try {
      const maps = JSON.parse((await run("bpftool", ["-j", "map", "show"])).stdout) as { id: number; name: string; max_entries: number; frozen?: number }[];
      const ours = (name: string) => maps.filter((m) => m.name === name).map((m) => m.max_entries);
      expect(ours("relay_events")).toContain(1 << 16);
      expect(ours("process_events")).toContain(1 << 21);
      expect(ours("detection_event")).toContain(1 << 18); // names are cut to 15 characters
      const shells = maps.filter((m) => m.name === "wakeup_shells");
      expect(shells.length).toBeGreaterThan(0);
      for (const map of shells) {
        expect(map.frozen).toBe(1);
        const entries = JSON.parse((await run("bpftool", ["-j", "map", "dump", "id", String(map.id)])).stdout) as { key: string[] }[];
        const names = entries.map((e) => Buffer.from(e.key.map((b) => parseInt(b, 16))).toString().replace(/\0+$/, ""));
        expect(names.sort()).toEqual([...SHELL_NAMES].sort());
      }
    } finally {
      await sized.close();
    }
  });

  it("counts nothing lost in a quiet run", () => {
    const counters = session.sensor.counters();
    expect(counters.socket_dup.emitted).toBeGreaterThanOrEqual(dupCases.length);
    for (const c of Object.values(counters)) expect(c.lost).toBe(0);
  });
});

describe.runIf(tier.run)("kernel: connect on every fd", () => {
  it("reports IPv6 and UDP connects with address and port", async () => {
    const session = await Session.open({ connectAllFds: true });
    const tcp6 = await tcpListener("::1");
    const udp = await udpListener("127.0.0.1");
    try {
      const child = await python(
        `import socket\na = socket.create_connection(("::1", ${tcp6.port}))\nb = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nb.connect(("127.0.0.1", ${udp.port}))`,
      );
      expect(child.status).toBe(0);
      await session.settle();
      const connects = session.of(child.pid).filter((e): e is ConnectEvent => e.kind === "connect" && e.family !== "unix");
      expect(connects.map((c) => [c.family, c.socketType, c.remote?.address, c.remote?.port, c.result])).toEqual([
        ["inet6", "stream", "::1", tcp6.port, 0],
        ["inet", "dgram", "127.0.0.1", udp.port, 0],
      ]);
    } finally {
      session.close();
      await tcp6.close();
      await udp.close();
    }
  });
});

describe.runIf(tier.run)("kernel: privileges", () => {
  it("an unprivileged run fails with one line naming the missing capabilities", async () => {
    const r = await run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", process.execPath, "dist/cli/main.js", "run"]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/^sockeye: missing CAP_BPF and CAP_PERFMON .*\[SOCKEYE_EPERM_BPF\]$/m);
  });

  it("SensorError carries code and errno", () => {
    const e = new SensorError("x", "NO_BTF", 2);
    expect([e.code, e.errno, e.name]).toEqual(["SOCKEYE_NO_BTF", 2, "SensorError"]);
  });
});

void PYTHON;
