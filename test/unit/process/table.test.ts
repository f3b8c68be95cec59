import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterEach, describe, expect, it } from "vitest";
import { OFFLINE_HOST, ProcessTable } from "sockeye";
import { BASE_TIME_MS, exec, exit, fork } from "../engine/fixtures.js";
import { ProcHostView } from "../../../src/host/proc-host.js";

const TICK_NS = 10_000_000; // USER_HZ 100

describe("process table: fork, exec, exit", () => {
  it("records an exec with executable, base name, args, uid and parent", () => {
    const table = new ProcessTable();
    table.apply(exec({ task: { pid: 10, ppid: 1, uid: 0, comm: "sshd", startNs: 1 }, filename: "/usr/sbin/sshd", args: ["sshd", "-D"] }));
    table.apply(exec({ task: { pid: 20, ppid: 10, uid: 1000, startNs: 2 }, filename: "/usr/bin/bash", args: ["-bash"] }));
    expect(table.get(20)).toMatchObject({
      pid: 20,
      ppid: 10,
      executable: "/usr/bin/bash",
      name: "bash",
      args: ["-bash"],
      uid: 1000,
      cgroupId: 7777,
      exited: false,
    });
    expect(table.ancestors(20).map((process) => process.name)).toEqual(["sshd"]);
  });

  it("keeps a relative exec filename as given", () => {
    const table = new ProcessTable();
    table.apply(exec({ task: { pid: 30 }, filename: "./payload", args: ["./payload"] }));
    expect(table.get(30)).toMatchObject({ executable: "./payload", name: "payload" });
  });

  it("gives a forked child its parent's program until it execs", () => {
    const table = new ProcessTable();
    table.apply(exec({ task: { pid: 10, startNs: 1 }, filename: "/usr/bin/python3", args: ["python3", "x.py"] }));
    table.apply(fork({ task: { pid: 11, ppid: 10, startNs: 2, comm: "python3" } }));
    expect(table.get(11)).toMatchObject({ ppid: 10, executable: "/usr/bin/python3", args: ["python3", "x.py"], name: "python3" });
    table.apply(exec({ task: { pid: 11, ppid: 10, startNs: 2 }, filename: "/bin/sh", args: ["sh", "-i"] }));
    expect(table.get(11)).toMatchObject({ executable: "/bin/sh", args: ["sh", "-i"], startNs: 2 });
  });

  it("ignores thread creation (tid differs from pid)", () => {
    const table = new ProcessTable();
    table.apply(exec({ task: { pid: 10, startNs: 1 }, filename: "/usr/bin/node" }));
    table.apply(fork({ task: { pid: 10, tid: 12, startNs: 3 } }));
    expect(table.get(10)).toMatchObject({ executable: "/usr/bin/node", startNs: 1 });
    expect(table.stats().pidReused).toBe(0);
  });

  it("returns frozen entries, so a rule cannot alter the table", () => {
    const table = new ProcessTable();
    table.apply(exec({ task: { pid: 10 }, args: ["bash"] }));
    const entry = table.get(10);
    expect(Object.isFrozen(entry)).toBe(true);
    expect(Object.isFrozen(entry?.args)).toBe(true);
  });
});

describe("process table: pid reuse", () => {
  it("replaces an entry when an event's start time differs", () => {
    const table = new ProcessTable();
    table.apply(exec({ task: { pid: 50, startNs: 1_000 }, filename: "/usr/bin/old" }));
    table.apply(exec({ task: { pid: 50, startNs: 2_000 }, filename: "/usr/bin/new" }));
    expect(table.get(50)).toMatchObject({ executable: "/usr/bin/new", startNs: 2_000 });
    expect(table.stats().pidReused).toBe(1);
  });

  it("answers get(pid, startNs) only for the same incarnation", () => {
    const table = new ProcessTable();
    table.apply(exec({ task: { pid: 50, startNs: 1_000 }, filename: "/usr/bin/old" }));
    expect(table.get(50, 1_000)?.executable).toBe("/usr/bin/old");
    expect(table.get(50, 2_000)).toBeUndefined();
  });

  it("ignores an exit of an earlier owner of the pid", () => {
    const table = new ProcessTable();
    table.apply(exec({ task: { pid: 50, startNs: 2_000 } }));
    table.apply(exit({ task: { pid: 50, startNs: 1_000 } }));
    expect(table.get(50)?.exited).toBe(false);
  });

  it("stops ancestors at a parent that started after its child (a reused parent pid)", () => {
    const table = new ProcessTable();
    table.apply(exec({ task: { pid: 60, ppid: 1, startNs: 9_000 }, filename: "/usr/bin/later" }));
    table.apply(exec({ task: { pid: 61, ppid: 60, startNs: 5_000 }, filename: "/bin/sh" }));
    expect(table.ancestors(61)).toEqual([]);
  });
});

describe("process table: exits linger, then go", () => {
  it("keeps an exited entry for the linger time of event time, then drops it", () => {
    const table = new ProcessTable({ exitedLingerMs: 5_000 });
    table.apply(exec({ task: { pid: 70 }, filename: "/bin/nc", timeMs: BASE_TIME_MS }));
    table.apply(exit({ task: { pid: 70 }, timeMs: BASE_TIME_MS + 1_000 }));
    expect(table.get(70)).toMatchObject({ executable: "/bin/nc", exited: true });

    table.apply(fork({ task: { pid: 71 }, timeMs: BASE_TIME_MS + 5_999 }));
    expect(table.get(70)?.exited).toBe(true);

    table.apply(fork({ task: { pid: 72 }, timeMs: BASE_TIME_MS + 6_000 }));
    expect(table.get(70)).toBeUndefined();
    expect(table.stats().expired).toBe(1);
  });

  it("times a reused pid's exit from its last exit, not its first", () => {
    const table = new ProcessTable({ exitedLingerMs: 5_000 });
    table.apply(fork({ task: { pid: 80, startNs: 1 }, timeMs: BASE_TIME_MS }));
    table.apply(exit({ task: { pid: 80, startNs: 1 }, timeMs: BASE_TIME_MS + 1_000 }));
    table.apply(fork({ task: { pid: 81, startNs: 2 }, timeMs: BASE_TIME_MS + 2_000 }));
    table.apply(exit({ task: { pid: 81, startNs: 2 }, timeMs: BASE_TIME_MS + 2_000 }));
    // pid 80 again, a later process that exits later.
    table.apply(fork({ task: { pid: 80, startNs: 3 }, timeMs: BASE_TIME_MS + 3_000 }));
    table.apply(exit({ task: { pid: 80, startNs: 3 }, timeMs: BASE_TIME_MS + 4_000 }));

    table.apply(fork({ task: { pid: 90 }, timeMs: BASE_TIME_MS + 7_000 }));
    expect(table.get(81)).toBeUndefined();
    expect(table.get(80)).toMatchObject({ startNs: 3, exited: true });
    table.apply(fork({ task: { pid: 91 }, timeMs: BASE_TIME_MS + 9_000 }));
    expect(table.get(80)).toBeUndefined();
    expect(table.stats()).toMatchObject({ expired: 2, pidReused: 1 });
  });
});

describe("process table: leaves go sooner than parents", () => {
  it("keeps an exited parent the whole linger time, an exited process that never forked 5 s", () => {
    const table = new ProcessTable(); // default linger: 60 s
    table.apply(exec({ task: { pid: 200, ppid: 1, startNs: 1 }, filename: "/usr/bin/bash", timeMs: BASE_TIME_MS }));
    table.apply(fork({ task: { pid: 201, ppid: 200, startNs: 2 }, timeMs: BASE_TIME_MS + 10 }));
    table.apply(exec({ task: { pid: 201, ppid: 200, startNs: 2 }, filename: "/bin/true", timeMs: BASE_TIME_MS + 20 }));
    table.apply(exit({ task: { pid: 201, ppid: 200, startNs: 2 }, timeMs: BASE_TIME_MS + 1_000 }));
    table.apply(exit({ task: { pid: 200, ppid: 1, startNs: 1 }, timeMs: BASE_TIME_MS + 1_000 }));

    table.apply(fork({ task: { pid: 300, startNs: 3 }, timeMs: BASE_TIME_MS + 5_999 }));
    expect([table.get(200)?.exited, table.get(201)?.exited]).toEqual([true, true]);
    table.apply(fork({ task: { pid: 301, startNs: 4 }, timeMs: BASE_TIME_MS + 6_000 }));
    expect(table.get(201)).toBeUndefined();
    expect(table.get(200)).toMatchObject({ executable: "/usr/bin/bash", exited: true });

    table.apply(fork({ task: { pid: 302, startNs: 5 }, timeMs: BASE_TIME_MS + 60_999 }));
    expect(table.get(200)?.exited).toBe(true);
    table.apply(fork({ task: { pid: 303, startNs: 6 }, timeMs: BASE_TIME_MS + 61_000 }));
    expect(table.get(200)).toBeUndefined();
    expect(table.stats().expired).toBe(2);
  });

  it("a process keeps its children across its own exec; its pid's next process starts without", () => {
    const table = new ProcessTable();
    table.apply(exec({ task: { pid: 210, startNs: 1 }, filename: "/usr/bin/bash", timeMs: BASE_TIME_MS }));
    table.apply(fork({ task: { pid: 211, ppid: 210, startNs: 2 }, timeMs: BASE_TIME_MS }));
    table.apply(exec({ task: { pid: 210, startNs: 1 }, filename: "/usr/bin/sleep", timeMs: BASE_TIME_MS + 10 }));
    table.apply(exit({ task: { pid: 210, startNs: 1 }, timeMs: BASE_TIME_MS + 20 }));
    // pid 220: a leaf whose pid was a parent's before (another incarnation).
    table.apply(fork({ task: { pid: 220, ppid: 1, startNs: 3 }, timeMs: BASE_TIME_MS }));
    table.apply(fork({ task: { pid: 221, ppid: 220, startNs: 4 }, timeMs: BASE_TIME_MS }));
    table.apply(exit({ task: { pid: 220, ppid: 1, startNs: 3 }, timeMs: BASE_TIME_MS + 20 }));
    table.apply(fork({ task: { pid: 220, ppid: 1, startNs: 5 }, timeMs: BASE_TIME_MS + 30 }));
    table.apply(exit({ task: { pid: 220, ppid: 1, startNs: 5 }, timeMs: BASE_TIME_MS + 40 }));

    table.apply(fork({ task: { pid: 230, startNs: 6 }, timeMs: BASE_TIME_MS + 10_000 }));
    expect(table.get(210)).toMatchObject({ executable: "/usr/bin/sleep", exited: true });
    expect(table.get(220)).toBeUndefined();
  });

  it("when full, drops the earliest exit of either kind first", () => {
    const table = new ProcessTable({ maxEntries: 3, exitedLingerMs: 3_600_000 });
    table.apply(fork({ task: { pid: 10, startNs: 1 }, timeMs: BASE_TIME_MS }));
    table.apply(fork({ task: { pid: 11, ppid: 10, startNs: 2 }, timeMs: BASE_TIME_MS }));
    table.apply(exit({ task: { pid: 10, startNs: 1 }, timeMs: BASE_TIME_MS + 1 })); // parent, first exit
    table.apply(exit({ task: { pid: 11, ppid: 10, startNs: 2 }, timeMs: BASE_TIME_MS + 2 })); // leaf
    table.apply(fork({ task: { pid: 12, startNs: 3 }, timeMs: BASE_TIME_MS + 3 }));
    table.apply(fork({ task: { pid: 13, startNs: 4 }, timeMs: BASE_TIME_MS + 4 }));
    expect([10, 11, 12, 13].map((pid) => table.get(pid) !== undefined)).toEqual([false, true, true, true]);
  });
});

describe("process table: bounded under a fork storm", () => {
  it("never holds more than maxEntries and keeps the newest", () => {
    const table = new ProcessTable({ maxEntries: 100 });
    for (let pid = 1_000; pid < 11_000; pid++) table.apply(fork({ task: { pid, ppid: 999, startNs: pid } }));
    expect(table.size).toBe(100);
    expect(table.stats()).toMatchObject({ size: 100, evicted: 9_900 });
    expect(table.get(10_999)).toBeDefined();
    expect(table.get(1_000)).toBeUndefined();
  });

  it("evicts exited children before a long-lived live parent", () => {
    const table = new ProcessTable({ maxEntries: 50, exitedLingerMs: 3_600_000 });
    table.apply(exec({ task: { pid: 2, ppid: 1, startNs: 1 }, filename: "/usr/sbin/cron" }));
    for (let pid = 100; pid < 5_100; pid++) {
      const child = { pid, ppid: 2, startNs: pid };
      table.apply(fork({ task: child }));
      table.apply(exit({ task: child }));
    }
    expect(table.size).toBeLessThanOrEqual(50);
    expect(table.get(2)).toMatchObject({ executable: "/usr/sbin/cron", exited: false });
    expect(table.get(5_099)?.exited).toBe(true);
  });

  it("evicts the earliest exit first when exited pids are reused", () => {
    const table = new ProcessTable({ maxEntries: 3, exitedLingerMs: 3_600_000 });
    for (const pid of [10, 11, 12]) {
      table.apply(fork({ task: { pid, startNs: pid } }));
      table.apply(exit({ task: { pid, startNs: pid } }));
    }
    // pid 10 reused and exited again: now the latest exit, so 11 goes first.
    table.apply(fork({ task: { pid: 10, startNs: 100 } }));
    table.apply(exit({ task: { pid: 10, startNs: 100 } }));
    table.apply(fork({ task: { pid: 13, startNs: 13 } }));
    expect([10, 11, 12, 13].map((pid) => table.get(pid) !== undefined)).toEqual([true, false, true, true]);
    expect(table.stats()).toMatchObject({ size: 3, evicted: 1 });
  });
});

describe("process table: argv bounded by bytes", () => {
  it("keeps as many arguments as fit per entry, and argv[0] only once the table's total is spent; both flagged", () => {
    const table = new ProcessTable({ maxArgvBytes: 110, maxArgvBytesTotal: 150 });
    const run = (pid: number, args: string[]) => table.apply(exec({ task: { pid, startNs: pid }, filename: "/bin/x", args }));
    run(10, ["x", "a".repeat(40), "b".repeat(40)]);
    expect(table.get(10)).toMatchObject({ args: ["x", "a".repeat(40)], argsTruncated: true });
    run(11, ["y", "short"]);
    expect(table.get(11)?.args).toEqual(["y", "short"]);
    expect(table.get(11)?.argsTruncated).toBeUndefined();
    run(12, ["z", "more"]); // the total (150) is spent: argv[0] only
    expect(table.get(12)).toMatchObject({ args: ["z"], argsTruncated: true });
    expect(table.stats()).toMatchObject({ argvTruncated: 2, argvBytes: 1 + 40 + 32 * 2 + 1 + 5 + 32 * 2 + 1 + 32 });
    run(13, ["w".repeat(500)]); // a huge argv[0] is cut to the per-entry bound
    expect(table.get(13)).toMatchObject({ args: ["w".repeat(110)], argsTruncated: true });
    table.apply(exit({ task: { pid: 10, startNs: 10 } }));
    expect(table.stats().argvBytes).toBe(1 + 40 + 32 * 2 + 1 + 5 + 32 * 2 + 1 + 32 + 110 + 32); // an exited entry keeps its argv
  });

  it("32,768 execs of 4,095 arguments each keep the heap flat", () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const table = new ProcessTable();
    const template = exec({ filename: "/usr/bin/x", args: Array.from({ length: 4095 }, (_, i) => `arg${i}`) });
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let pid = 1; pid <= 32_768; pid++) table.apply({ ...template, task: { ...template.task, pid, tid: pid, startNs: pid } });
    gc();
    const grown = process.memoryUsage().heapUsed - before;
    expect(table.size).toBe(32_768);
    // Unbounded, each entry kept 4,095 array slots: about 1 GiB. Bounded: the entries themselves and 32 MiB of argv at most.
    expect(table.stats().argvBytes).toBeLessThanOrEqual(32 * 1024 * 1024 + 16 * 1024 + 32_768 * (256 + 32));
    expect(grown).toBeLessThan(96 * 1024 * 1024);
  });
});

describe("process table: seeding from /proc", () => {
  let procRoot = "";
  afterEach(() => rmSync(procRoot, { recursive: true, force: true }));

  function fakeProcess(pid: number, fields: { comm: string; ppid: number; startTicks: number; uid: number; gid?: number; cmdline: string[]; exe?: string }) {
    const dir = join(procRoot, String(pid));
    mkdirSync(dir);
    // Fields 3.. of proc(5) stat; starttime is field 22. comm may hold spaces and parens.
    const rest = ["S", fields.ppid, ...Array<number>(17).fill(0), fields.startTicks, 0, 0];
    writeFileSync(join(dir, "stat"), `${pid} (${fields.comm}) ${rest.join(" ")}\n`);
    const ids = (id: number) => `${id}\t${id}\t${id}\t${id}`;
    const gidLine = fields.gid !== undefined ? `Gid:\t${ids(fields.gid)}\n` : "";
    writeFileSync(join(dir, "status"), `Name:\t${fields.comm}\nUid:\t${ids(fields.uid)}\n${gidLine}`);
    writeFileSync(join(dir, "cmdline"), fields.cmdline.map((arg) => `${arg}\0`).join(""));
    if (fields.exe !== undefined) symlinkSync(fields.exe, join(dir, "exe"));
  }

  function seededTable() {
    procRoot = mkdtempSync(join(tmpdir(), "sockeye-proc-"));
    fakeProcess(1, { comm: "systemd", ppid: 0, startTicks: 1, uid: 0, gid: 0, cmdline: ["/sbin/init"], exe: "/usr/lib/systemd/systemd" });
    fakeProcess(2, { comm: "kthreadd", ppid: 0, startTicks: 1, uid: 0, gid: 0, cmdline: [] });
    fakeProcess(300, { comm: "tmux: server (1)", ppid: 1, startTicks: 500, uid: 1000, gid: 1000, cmdline: ["tmux", "new"], exe: "/usr/bin/tmux (deleted)" });
    // No Gid line (not on a real /proc): seeded, but no already_running event without a group.
    fakeProcess(301, { comm: "bash", ppid: 300, startTicks: 600, uid: 1000, cmdline: ["-bash"], exe: "/usr/bin/bash" });
    fakeProcess(302, { comm: "sleep", ppid: 301, startTicks: 700, uid: 1000, gid: 100, cmdline: ["sleep", "600"], exe: "/usr/bin/sleep" });
    writeFileSync(join(procRoot, "uptime"), "1.0 1.0\n");
    mkdirSync(join(procRoot, "999")); // vanished while we read: no stat
    const table = new ProcessTable({ host: new ProcHostView({ procRoot }) });
    return { table, report: table.seedFromProc({ timeNs: 5_000, timeMs: 1_700_000_000_000 }) };
  }

  it("reads every pid directory and reports the unreadable ones", () => {
    const { table, report } = seededTable();
    expect(report).toMatchObject({ seeded: 5, skipped: 1 });
    expect(table.get(301)).toMatchObject({
      pid: 301,
      ppid: 300,
      executable: "/usr/bin/bash",
      name: "bash",
      args: ["-bash"],
      uid: 1000,
      comm: "bash",
      startNs: 600 * TICK_NS,
    });
    expect(table.get(300)).toMatchObject({ comm: "tmux: server (1)", executable: "/usr/bin/tmux", name: "tmux" });
    expect(table.get(2)).toMatchObject({ executable: "", name: "kthreadd", args: [] });
    expect(table.ancestors(301).map((process) => process.pid)).toEqual([300, 1]);
  });

  it("reports one already_running event per process found, in pid order, with the task as /proc tells it", () => {
    const { report } = seededTable();
    expect(report.alreadyRunning.map((event) => event.task.pid)).toEqual([1, 2, 300, 302]);
    expect(report.alreadyRunning[3]).toEqual({
      kind: "already_running",
      timeNs: 5_000,
      timeMs: 1_700_000_000_000,
      task: { pid: 302, tid: 302, ppid: 301, uid: 1000, gid: 100, cgroupId: 0, startNs: 700 * TICK_NS, comm: "sleep", parentComm: "bash" },
      executable: "/usr/bin/sleep",
      args: ["sleep", "600"],
    });
    // A kernel thread: no executable, no argv; init's parent (pid 0) is in no table.
    expect(report.alreadyRunning[1]).toMatchObject({ executable: "", args: [], task: { comm: "kthreadd", parentComm: "" } });
    expect(report.alreadyRunning[2]).toMatchObject({ executable: "/usr/bin/tmux", task: { parentComm: "systemd" } });
  });

  it("gives an already_running event the namespaces /proc shows, as a kernel record's task carries them", () => {
    const { table } = seededTable();
    // A shell in its own pid and network namespaces (pid 1 inside), started before the sensor.
    fakeProcess(400, { comm: "sh", ppid: 1, startTicks: 800, uid: 0, gid: 0, cmdline: ["sh"], exe: "/usr/bin/dash" });
    writeFileSync(join(procRoot, "400", "status"), "Name:\tsh\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nNSpid:\t400\t1\n");
    mkdirSync(join(procRoot, "400", "ns"));
    symlinkSync("pid:[4026532410]", join(procRoot, "400", "ns", "pid"));
    symlinkSync("mnt:[4026531841]", join(procRoot, "400", "ns", "mnt"));
    symlinkSync("net:[4026532412]", join(procRoot, "400", "ns", "net"));
    const report = table.seedFromProc({ timeNs: 6_000, timeMs: 1_700_000_000_001 });
    const shell = report.alreadyRunning.find((event) => event.task.pid === 400)!;
    expect(shell.task).toEqual({
      pid: 400, tid: 400, ppid: 1, uid: 0, gid: 0, cgroupId: 0, startNs: 800 * TICK_NS, comm: "sh", parentComm: "systemd",
      nsPid: 1, pidNs: 4026532410, mntNs: 4026531841, netNs: 4026532412,
    });
    // A process whose namespaces could not be read has none rather than made-up ones.
    const sleeper = report.alreadyRunning.find((event) => event.task.pid === 302)!;
    for (const field of ["nsPid", "pidNs", "mntNs", "netNs"]) expect(sleeper.task).not.toHaveProperty(field);
  });

  it("learns a process from its already_running event (a replay), and keeps the one it seeded", () => {
    const { table, report } = seededTable();
    const replayTable = new ProcessTable();
    for (const event of report.alreadyRunning) replayTable.apply(event);
    expect(replayTable.get(302, 700 * TICK_NS + 3_000)).toMatchObject({ executable: "/usr/bin/sleep", name: "sleep", args: ["sleep", "600"], gid: 100 });
    expect(replayTable.get(2)).toMatchObject({ executable: "", name: "kthreadd" });
    expect(replayTable.ancestors(302).map((process) => process.pid)).toEqual([]); // 301 made no event
    const before = table.get(302);
    for (const event of report.alreadyRunning) table.apply(event);
    expect(table.get(302)).toBe(before);
    expect(table.stats().pidReused).toBe(0);
  });

  it("matches a seeded entry to an event's exact start time within a tick, then adopts it", () => {
    const { table } = seededTable();
    const exactStart = 600 * TICK_NS + 4_321_000;
    expect(table.get(301, exactStart)?.name).toBe("bash");
    table.apply(exec({ task: { pid: 301, ppid: 300, startNs: exactStart }, filename: "/usr/bin/nc", args: ["nc", "x", "1"] }));
    expect(table.get(301)).toMatchObject({ executable: "/usr/bin/nc", startNs: exactStart });
    expect(table.stats().pidReused).toBe(0);
  });

  it("reads a live process's working directory from /proc, never in a table not seeded from it", () => {
    const { table } = seededTable();
    symlinkSync("/srv/app", join(procRoot, "301", "cwd"));
    expect(table.workingDirectory(301)).toBe("/srv/app");
    expect(table.workingDirectory(300)).toBeUndefined(); // no cwd link: unreadable
    // With a start time: only that incarnation of the pid (within /proc's tick).
    expect(table.workingDirectory(301, 600 * TICK_NS + 5_000)).toBe("/srv/app");
    expect(table.workingDirectory(301, 900 * TICK_NS)).toBeUndefined();
    table.apply(exit({ task: { pid: 301, ppid: 300, startNs: 600 * TICK_NS } }));
    expect(table.workingDirectory(301)).toBeUndefined(); // exited: the pid may be reused
    const replayTable = new ProcessTable({ host: new ProcHostView({ procRoot }) });
    replayTable.apply(exec({ task: { pid: 301, ppid: 300, startNs: 1 }, filename: "/usr/bin/nc", args: ["nc"] }));
    expect(replayTable.workingDirectory(301)).toBeUndefined();
  });
});

describe("process table: container of a process", () => {
  const ID = "a".repeat(64);
  it("one look per cgroup id, however many findings its processes make (findings come in floods)", () => {
    let looks = 0;
    const host = { ...OFFLINE_HOST, processIds: () => [], cgroupPath: () => (looks++, `/libpod_parent/libpod-${ID}`) };
    const table = new ProcessTable({ host });
    table.seedFromProc();
    for (let pid = 100; pid < 200; pid++) expect(table.container(7, pid)).toEqual({ id: ID, runtime: "podman" });
    expect(looks).toBe(1);
  });
});

describe("process table: a container's names", () => {
  const ID = "b".repeat(64);
  it("are read through host processes' roots, farthest first, never one inside the container, once per container", () => {
    const inside = `/libpod_parent/libpod-${ID}`;
    const paths = new Map<number, string>([[50, "/libpod_parent/conmon"], [60, inside], [70, inside], [80, inside]]);
    const asked: number[][] = [];
    const host = {
      ...OFFLINE_HOST,
      cgroupPath: (_id: number, pid: number) => paths.get(pid),
      containerMetadata: (_c: unknown, via: readonly number[]) => (asked.push([...via]), { name: "web" }),
    };
    const table = new ProcessTable({ host });
    table.seedFromProc();
    table.apply(exec({ task: { pid: 50, ppid: 1, startNs: 1 }, filename: "/usr/bin/conmon", args: ["conmon"] }));
    table.apply(exec({ task: { pid: 60, ppid: 50, startNs: 2 }, filename: "/bin/sh", args: ["sh"] }));
    table.apply(exec({ task: { pid: 70, ppid: 60, startNs: 3 }, filename: "/bin/bash", args: ["bash"] }));
    expect(table.container(9, 70)).toEqual({ id: ID, runtime: "podman", name: "web" });
    expect(asked).toEqual([[1, 50]]);
    table.apply(exec({ task: { pid: 80, ppid: 60, startNs: 4 }, filename: "/bin/bash", args: ["bash"] }));
    expect(table.container(9, 80)).toEqual({ id: ID, runtime: "podman", name: "web" });
    expect(asked).toHaveLength(1);
  });
});

describe("process table: a container in cgroup v1 hierarchies only (a hybrid host)", () => {
  const ID = "c".repeat(64);
  const SHIM = "/system.slice/containerd.service";
  /** Every process here has cgroup id 7 (the shim's unified cgroup); pids 60.. are in the container's v1 cgroups. */
  function hybridHost() {
    const looks = { v2: 0, v1: [] as number[], metadataVia: [] as number[][] };
    const host = {
      ...OFFLINE_HOST,
      cgroupPath: () => (looks.v2++, SHIM),
      cgroupV1ContainerPath: (pid: number) => (looks.v1.push(pid), pid >= 60 ? `/docker/${ID}` : undefined),
      containerMetadata: (_c: unknown, via: readonly number[]) => (looks.metadataVia.push([...via]), { name: "web" }),
    };
    const table = new ProcessTable({ host });
    table.seedFromProc();
    table.apply(exec({ task: { pid: 50, ppid: 1, startNs: 1, cgroupId: 7 }, filename: "/usr/bin/containerd-shim-runc-v2", args: ["shim"] }));
    table.apply(exec({ task: { pid: 60, ppid: 50, startNs: 2, cgroupId: 7 }, filename: "/bin/sh", args: ["sh"] }));
    table.apply(exec({ task: { pid: 70, ppid: 60, startNs: 3, cgroupId: 7 }, filename: "/bin/bash", args: ["bash"] }));
    return { table, looks };
  }

  it("is named from the v1 hierarchies, while a host process of the same unified cgroup stays the host's", () => {
    const { table, looks } = hybridHost();
    expect(table.container(7, 50)).toBeUndefined();
    expect(table.container(7, 70)).toEqual({ id: ID, runtime: "docker", name: "web" });
    expect(table.container(7, 50)).toBeUndefined(); // the container's answer is not the cgroup id's
    // The v1 hierarchies once per process, however many findings; the unified path no more.
    const v2Looks = looks.v2;
    for (let i = 0; i < 100; i++) table.container(7, 70);
    expect(looks.v2).toBe(v2Looks);
    expect(looks.v1.sort()).toEqual([50, 60, 70]); // 60 as 70's ancestor, to tell it is inside
    // The runtime's names through host roots only: pid 1 and the shim, never the container's sh (60).
    expect(looks.metadataVia).toEqual([[1, 50]]);
  });

  it("is not asked for a process whose exit was seen (its pid may be another's, v1 cgroups have no id to resolve)", () => {
    const { table, looks } = hybridHost();
    table.apply(exit({ task: { pid: 70, ppid: 60, startNs: 3, cgroupId: 7 } }));
    expect(table.container(7, 70)).toBeUndefined();
    expect(looks.v1).not.toContain(70);
  });

  it("a host view without the v1 look (written before it) answers as before: the cgroup id's answer", () => {
    const host = { ...OFFLINE_HOST, cgroupPath: () => SHIM };
    const table = new ProcessTable({ host });
    table.seedFromProc();
    table.apply(exec({ task: { pid: 70, ppid: 1, startNs: 3, cgroupId: 7 }, filename: "/bin/bash", args: ["bash"] }));
    expect(table.container(7, 70)).toBeUndefined();
  });
});
