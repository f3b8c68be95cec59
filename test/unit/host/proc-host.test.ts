/**
 * ProcHostView over a fake /proc tree: open files with their access and pty index, the
 * incarnation check, the fd and byte budgets answering `incomplete`, and the cache policy
 * (digests by file identity, the boot id once).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ProcHostView } from "../../../src/host/proc-host.js";
import { START_TICK_NS as TICK } from "../../../src/host/host-view.js";

let root = "";
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "sockeye-host-"));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** A process whose stat says it started at `startTicks`, holding `fds` (link target, fdinfo). */
function fakeProcess(pid: number, startTicks: number, fds: Record<number, { target: string; fdinfo?: string }>): void {
  const dir = join(root, String(pid));
  mkdirSync(join(dir, "fd"), { recursive: true });
  mkdirSync(join(dir, "fdinfo"));
  const rest = ["S", 1, ...Array<number>(17).fill(0), startTicks, 0, 0];
  writeFileSync(join(dir, "stat"), `${pid} (sh) ${rest.join(" ")}\n`);
  for (const [fd, { target, fdinfo }] of Object.entries(fds)) {
    symlinkSync(target, join(dir, "fd", fd));
    if (fdinfo !== undefined) writeFileSync(join(dir, "fdinfo", fd), fdinfo);
  }
}

describe("ProcHostView", () => {
  it("reads what each fd is and how it was opened, for that incarnation of the pid only", () => {
    const fifo = join(root, "f");
    execFileSync("mkfifo", [fifo]);
    fakeProcess(40, 500, {
      0: { target: "pipe:[123]", fdinfo: "pos:\t0\nflags:\t0100000\n" },
      1: { target: "pipe:[124]", fdinfo: "pos:\t0\nflags:\t0100001\n" },
      2: { target: "socket:[77]" },
      3: { target: "/dev/pts/3" },
      4: { target: "/dev/ptmx", fdinfo: "flags:\t0100002\ntty-index:\t4\n" },
      5: { target: fifo, fdinfo: "flags:\t0100002\n" },
      6: { target: "/etc/hostname" },
    });
    const host = new ProcHostView({ procRoot: root });
    const { dev, ino } = statSync(fifo);
    expect(host.openFiles(40, 500 * TICK)).toEqual({
      status: "complete",
      files: [
        { fd: 0, object: { kind: "pipe", ino: 123 }, access: "read" },
        { fd: 1, object: { kind: "pipe", ino: 124 }, access: "write" },
        { fd: 2, object: { kind: "socket", ino: 77 }, access: "both" },
        { fd: 3, object: { kind: "pty_slave", index: 3 }, access: "both" },
        { fd: 4, object: { kind: "pty_master", index: 4 }, access: "both" },
        { fd: 5, object: { kind: "fifo", major: (dev >>> 8) & 0xfff, minor: (dev & 0xff) | ((dev >>> 12) & 0xfff00), ino }, access: "both" },
      ],
    });
    // Another start time: the pid was reused, nothing of it is lent.
    expect(host.openFiles(40, 900 * TICK)).toEqual({ status: "gone" });
    expect(host.openFiles(41, 500 * TICK)).toEqual({ status: "gone" });
  });

  it("reads at most 64 KiB of a command line, dropping the argument cut at the bound", () => {
    fakeProcess(40, 500, {});
    writeFileSync(join(root, "40", "status"), "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n");
    const args = ["/bin/true", ...Array.from({ length: 2000 }, (_, i) => `argument-${i}-${"x".repeat(30)}`)];
    writeFileSync(join(root, "40", "cmdline"), `${args.join("\0")}\0`);
    const record = new ProcHostView({ procRoot: root }).processRecord(40)!;
    const kept = record.args.reduce((sum, arg) => sum + arg.length + 1, 0);
    expect(kept).toBeLessThanOrEqual(64 * 1024);
    expect(kept).toBeGreaterThan(64 * 1024 - 64);
    expect(record.args).toEqual(args.slice(0, record.args.length));
  });

  it("reads the namespaces of a process found running as the kernel names them, leaving out what it cannot read", () => {
    fakeProcess(40, 500, {});
    writeFileSync(join(root, "40", "status"), "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nNSpid:\t40\t1\n");
    writeFileSync(join(root, "40", "cmdline"), "sleep\0");
    mkdirSync(join(root, "40", "ns"));
    symlinkSync("pid:[4026532410]", join(root, "40", "ns", "pid"));
    symlinkSync("mnt:[4026532409]", join(root, "40", "ns", "mnt"));
    symlinkSync("net:[4026532412]", join(root, "40", "ns", "net"));
    const host = new ProcHostView({ procRoot: root });
    expect(host.processRecord(40)).toMatchObject({ pid: 40, nsPid: 1, pidNs: 4026532410, mntNs: 4026532409, netNs: 4026532412 });
    expect(host.netNamespace(40)).toBe(4026532412);
    // No ns folder (another user's process without CAP_SYS_PTRACE), no NSpid line: left out, not 0.
    fakeProcess(41, 500, {});
    writeFileSync(join(root, "41", "status"), "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n");
    writeFileSync(join(root, "41", "cmdline"), "sleep\0");
    const bare = host.processRecord(41)!;
    expect(bare.pid).toBe(41);
    for (const field of ["nsPid", "pidNs", "mntNs", "netNs"]) expect(bare).not.toHaveProperty(field);
  });

  it("reads a process's v1 container path only on a host with v1 hierarchies, and only for that incarnation", () => {
    const id = "d".repeat(64);
    fakeProcess(40, 500, {});
    writeFileSync(join(root, "40", "cgroup"), `4:memory:/docker/${id}\n1:name=systemd:/docker/${id}\n0::/system.slice/containerd.service\n`);
    mkdirSync(join(root, "self"));
    writeFileSync(join(root, "self", "cgroup"), "4:memory:/\n1:name=systemd:/\n0::/\n");
    const hybrid = new ProcHostView({ procRoot: root });
    expect(hybrid.cgroupV1ContainerPath(40, 500 * TICK)).toBe(`/docker/${id}`);
    expect(hybrid.cgroupV1ContainerPath(40, 900 * TICK)).toBeUndefined(); // the pid is another process's now
    expect(hybrid.cgroupV1ContainerPath(41, 500 * TICK)).toBeUndefined(); // gone
    // A v2 host: the daemon's own file lists no v1 hierarchy, so no process's file is read.
    writeFileSync(join(root, "self", "cgroup"), "0::/system.slice/sockeye.service\n");
    expect(new ProcHostView({ procRoot: root }).cgroupV1ContainerPath(40, 500 * TICK)).toBeUndefined();
  });

  it("reads an environment whole up to the kernel's 6 MiB bound: a variable after 300 KB of padding is still seen", () => {
    fakeProcess(40, 500, {});
    const pad = Array.from({ length: 300 }, (_, i) => `PAD${i}=${"y".repeat(1000)}`);
    writeFileSync(join(root, "40", "environ"), `${["LD_PRELOAD=/a.so", ...pad, "LD_AUDIT=/b.so"].join("\0")}\0`);
    const names = new Set(["LD_PRELOAD", "LD_AUDIT", "PAD259", "PAD260"]);
    const seen = new ProcHostView({ procRoot: root }).environment(40, 500 * TICK, names)!;
    expect(seen).toEqual(["LD_PRELOAD=/a.so", `PAD259=${"y".repeat(1000)}`, `PAD260=${"y".repeat(1000)}`, "LD_AUDIT=/b.so"]);
  });

  it("asks no more about a process found gone (pid and start), and asks again about another start of its pid", () => {
    const host = new ProcHostView({ procRoot: root });
    const names = new Set(["LD_PRELOAD"]);
    expect(host.environment(41, 500 * TICK, names)).toBeUndefined(); // gone: no /proc/41
    // Were /proc/41 to show that same process again (it cannot: a gone process stays gone),
    // the answer is remembered rather than read; the pid's next process has another start.
    fakeProcess(41, 500, {});
    writeFileSync(join(root, "41", "environ"), "LD_PRELOAD=/a.so\0");
    writeFileSync(join(root, "41", "status"), "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n");
    expect(host.environment(41, 500 * TICK, names)).toBeUndefined();
    expect(host.liveFacts(41, 500 * TICK)).toBeUndefined();
    expect(host.liveFacts(41, 900 * TICK)).toBeUndefined(); // the stat names start 500: not this process (not remembered as gone)
    rmSync(join(root, "41"), { recursive: true });
    fakeProcess(41, 900, {});
    writeFileSync(join(root, "41", "environ"), "LD_PRELOAD=/b.so\0");
    expect(host.environment(41, 900 * TICK, names)).toEqual(["LD_PRELOAD=/b.so"]);
    // A fresh view reads the first process's files as they are.
    rmSync(join(root, "41"), { recursive: true });
    fakeProcess(41, 500, {});
    writeFileSync(join(root, "41", "status"), "Uid:\t0\t5\t0\t0\nGid:\t0\t6\t0\t0\n");
    expect(new ProcHostView({ procRoot: root }).liveFacts(41, 500 * TICK)).toMatchObject({ euid: 5, egid: 6 });
  });

  it("lists the inodes of a namespace's unix sockets from its /proc/<pid>/net/unix", () => {
    fakeProcess(40, 500, {});
    mkdirSync(join(root, "40", "net"));
    writeFileSync(
      join(root, "40", "net", "unix"),
      "Num       RefCount Protocol Flags    Type St Inode Path\n" +
        "0000000000000000: 00000002 00000000 00010000 0001 01 20512 /run/systemd/private\n" +
        "0000000000000000: 00000003 00000000 00000000 0001 03 33145\n",
    );
    const host = new ProcHostView({ procRoot: root });
    expect([...host.unixSocketInodes(40)]).toEqual([20512, 33145]);
    expect(host.unixSocketInodes(41).size).toBe(0); // gone
  });

  it("stops at the fd budget and says so, with what it read", () => {
    fakeProcess(40, 500, { 0: { target: "socket:[1]" }, 1: { target: "socket:[2]" }, 2: { target: "socket:[3]" } });
    const look = new ProcHostView({ procRoot: root, maxFdsPerLook: 2 }).openFiles(40, 500 * TICK);
    expect(look).toEqual({
      status: "incomplete",
      reason: "fd_budget",
      files: [
        { fd: 0, object: { kind: "socket", ino: 1 }, access: "both" },
        { fd: 1, object: { kind: "socket", ino: 2 }, access: "both" },
      ],
    });
  });

  it("hashes a file within the byte budget, answers incomplete past it, and keeps digests by file identity", () => {
    const file = join(root, "shell");
    writeFileSync(file, "#!/bin/sh\n");
    const sha256 = createHash("sha256").update("#!/bin/sh\n").digest("hex");
    utimesSync(file, 1_000_000, 1_000_000);
    const host = new ProcHostView({ procRoot: root, maxHashedBytes: 16 });
    expect(host.fileDigest(file)).toEqual({ status: "complete", sha256 });
    // Same size and mtime, same inode: the same identity, so the kept digest answers.
    writeFileSync(file, "#!/bin/XX\n");
    utimesSync(file, 1_000_000, 1_000_000);
    expect(host.fileDigest(file)).toEqual({ status: "complete", sha256 });
    writeFileSync(file, "#!/bin/sh with more than sixteen bytes\n");
    expect(host.fileDigest(file)).toEqual({ status: "incomplete", reason: "byte_budget" });
    expect(host.fileDigest(join(root, "missing"))).toEqual({ status: "unreadable" });
    expect(host.fileDigest(root)).toEqual({ status: "unreadable" });
  });

  it("reads an ELF file's build-id from its first bytes: a padded copy keeps it, a note past the budget is incomplete", () => {
    const dash = readFileSync("/bin/dash");
    const declared = /BuildID\[sha1\]=([0-9a-f]+)/.exec(execFileSync("file", ["-L", "/bin/dash"], { encoding: "utf8" }))?.[1];
    expect(declared).toMatch(/^[0-9a-f]{40}$/);
    const copy = join(root, "x");
    writeFileSync(copy, Buffer.concat([dash, Buffer.from([0x2a])]));
    const host = new ProcHostView({ procRoot: root });
    expect(host.buildId("/bin/dash")).toEqual({ status: "found", buildId: declared });
    expect(host.buildId(copy)).toEqual({ status: "found", buildId: declared });
    expect(new ProcHostView({ procRoot: root, maxBuildIdBytes: 128 }).buildId(copy)).toEqual({ status: "incomplete", reason: "byte_budget" });
    writeFileSync(join(root, "script"), "#!/bin/sh\necho hi\n");
    expect(host.buildId(join(root, "script"))).toEqual({ status: "none" });
    expect(host.buildId(join(root, "missing"))).toEqual({ status: "unreadable" });
  });

  it("reaches a file as the process sees it: its program, a relative path from its cwd, an absolute one under its root", () => {
    const host = new ProcHostView({ procRoot: root });
    expect(host.pathSeenBy(7)).toBe(`${root}/7/exe`);
    expect(host.pathSeenBy(7, "./x")).toBe(`${root}/7/cwd/./x`);
    expect(host.pathSeenBy(7, "/bin/sh")).toBe(`${root}/7/root/bin/sh`);
  });

  it("reads the boot id once", () => {
    mkdirSync(join(root, "sys/kernel/random"), { recursive: true });
    writeFileSync(join(root, "sys/kernel/random/boot_id"), "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\n");
    const host = new ProcHostView({ procRoot: root });
    expect(host.bootId()).toBe("0f1e2d3c4b5a69788796a5b4c3d2e1f0");
    writeFileSync(join(root, "sys/kernel/random/boot_id"), "ffffffff-4b5a-6978-8796-a5b4c3d2e1f0\n");
    expect(host.bootId()).toBe("0f1e2d3c4b5a69788796a5b4c3d2e1f0");
    expect(new ProcHostView({ procRoot: join(root, "nowhere") }).bootId()).toBe("");
  });
});
