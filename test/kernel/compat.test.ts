/**
 * ia32 syscalls (int $0x80 from a 64-bit program here, as from any 32-bit binary): syscall
 * tracepoints skip them, so by default they go unseen, and the report says so; with
 * compatSyscalls the raw sys_exit program reports them like their 64-bit twins.
 *
 * Machines of this kind differ: some kernel builds refuse ia32 syscalls (the caller dies with
 * SIGSEGV) although CONFIG_IA32_EMULATION=y. The helper's own int $0x80 says which kernel this
 * is, the sensor's probe must agree with it, and the tests for that kind of kernel run.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConnectEvent, SocketDupEvent } from "sockeye";
import { Session, kernelTier, run, tcpListener, type TcpListener } from "./harness.js";

const tier = kernelTier();
const SOURCE = new URL("./helpers/ia32-syscalls.c", import.meta.url).pathname;

/** Builds the helper and asks it whether this kernel runs ia32 syscalls. */
function buildHelper(): { helper: string; ia32: "taken" | "refused" } {
  const helper = join(mkdtempSync(join(tmpdir(), "sockeye-ia32-")), "ia32-syscalls");
  // cc comes with scripts/setup.sh --dev (the VM tier builds its guest helper with it too).
  const cc = spawnSync("cc", ["-O2", "-o", helper, SOURCE], { encoding: "utf8" });
  if (cc.status !== 0) throw new Error(`cannot build the ia32 helper with cc: ${cc.error?.message ?? cc.stderr}`);
  const probe = spawnSync(helper, ["getpid", "0"]);
  if (probe.status === 0) return { helper, ia32: "taken" };
  if (probe.signal === "SIGSEGV") return { helper, ia32: "refused" };
  throw new Error(`ia32 helper: int $0x80 getpid gave status ${probe.status} signal ${probe.signal}, neither ran nor SIGSEGV`);
}

const built = tier.run ? buildHelper() : undefined;
if (built) console.log(`ia32 syscalls on this kernel (${spawnSync("uname", ["-r"], { encoding: "utf8" }).stdout.trim()}): ${built.ia32}`);

describe.runIf(tier.run)("kernel: ia32 syscalls, what this kernel does", () => {
  it("the sensor's probe finds what an int $0x80 really does here", async () => {
    const session = await Session.open();
    try {
      expect(session.sensor.features.ia32Syscalls).toBe(built!.ia32);
    } finally {
      session.close();
    }
  });
});

describe.runIf(tier.run && built?.ia32 === "refused")("kernel: ia32 syscalls refused by this kernel", () => {
  const NOT_NEEDED = /^not needed: this kernel refuses ia32 syscalls .*SIGSEGV/;

  it("the compat row says there is nothing to watch, with or without compatSyscalls, and loads nothing", async () => {
    for (const compatSyscalls of [false, true]) {
      const session = await Session.open({ compatSyscalls });
      try {
        const compat = session.sensor.programs.find((p) => p.capability === "compat");
        expect(compat).toMatchObject({ program: "tp_btf/sys_exit (ia32 syscalls)", live: false });
        expect(compat!.reason).toMatch(NOT_NEEDED);
      } finally {
        session.close();
      }
    }
  });

  it("sockeye probe --compat-syscalls succeeds and says so", async () => {
    const r = await run(process.execPath, ["dist/cli/main.js", "probe", "--compat-syscalls", "--json"]);
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { features: { ia32Syscalls: string }; candidates: { capability: string; live: boolean; reason: string }[] };
    expect(report.features.ia32Syscalls).toBe("refused");
    const compat = report.candidates.find((c) => c.capability === "compat");
    expect(compat).toMatchObject({ live: false });
    expect(compat!.reason).toMatch(NOT_NEEDED);
  });
});

describe.runIf(tier.run && built?.ia32 === "taken")("kernel: ia32 syscalls taken by this kernel", () => {
  const helper = built?.helper ?? "";
  let tcp: TcpListener;

  beforeAll(async () => {
    tcp = await tcpListener();
  });
  afterAll(async () => {
    await tcp?.close();
  });

  const inetDups = (session: Session, pid: number) =>
    session.of(pid).filter((e): e is SocketDupEvent => e.kind === "socket_dup" && e.family === "inet");

  it("by default an int $0x80 dup2 of a socket onto fd 1 goes unseen, and the report says why", async () => {
    const session = await Session.open();
    try {
      const compat = session.sensor.programs.find((p) => p.capability === "compat");
      expect(compat).toMatchObject({ program: "tp_btf/sys_exit (ia32 syscalls)", live: false });
      expect(compat!.reason).toMatch(/^off: ia32 syscalls .* unseen .*; sensor\.compat_syscalls = true/);
      const child = await run(helper, ["dup2", String(tcp.port)]);
      expect(child.status).toBe(0); // the dup happened
      await session.settle();
      expect(inetDups(session, child.pid)).toEqual([]);
    } finally {
      session.close();
    }
  });

  it("sockeye probe --compat-syscalls loads and attaches the program, and detaches it", async () => {
    const r = await run(process.execPath, ["dist/cli/main.js", "probe", "--compat-syscalls", "--json"]);
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { candidates: { capability: string; live: boolean }[] };
    expect(report.candidates.find((c) => c.capability === "compat")).toMatchObject({ live: true });
  });

  describe("with compatSyscalls", () => {
    let session: Session;
    beforeAll(async () => {
      session = await Session.open({ compatSyscalls: true });
    });
    afterAll(() => session?.close());

    it("the program is live", () => {
      expect(session.sensor.programs.find((p) => p.capability === "compat")).toMatchObject({ live: true, reason: "" });
    });

    const dupCases: { mode: string; syscall: SocketDupEvent["syscall"]; newfd: number }[] = [
      { mode: "dup2", syscall: "dup2", newfd: 1 },
      { mode: "dup3", syscall: "dup3", newfd: 2 },
      { mode: "dup", syscall: "dup", newfd: 0 },
      { mode: "fcntl", syscall: "fcntl", newfd: 0 },
    ];
    for (const c of dupCases) {
      it(`int $0x80 ${c.mode} onto fd ${c.newfd} is a socket_dup like its 64-bit twin`, async () => {
        const child = await run(helper, [c.mode, String(tcp.port)]);
        expect(child.status).toBe(0);
        await session.settle();
        const dups = inetDups(session, child.pid);
        expect(dups).toHaveLength(1);
        expect(dups[0]).toMatchObject({
          syscall: c.syscall, newfd: c.newfd, socketType: "stream", protocol: 6, origin: "connected",
          remote: { address: "127.0.0.1", port: tcp.port },
        });
        expect(dups[0]!.oldfd).toBeGreaterThan(2);
      });
    }

    for (const mode of ["connect", "socketcall"]) {
      it(`int $0x80 ${mode} on fd 0 is a connect (connect runs on its tracepoint fallback here)`, async () => {
        const child = await run(helper, [mode, String(tcp.port)]);
        expect(child.status).toBe(0);
        await session.settle();
        const connects = session.of(child.pid).filter((e): e is ConnectEvent => e.kind === "connect");
        expect(connects).toHaveLength(1);
        expect(connects[0]).toMatchObject({
          fd: 0, result: 0, family: "inet", source: "tracepoint", remote: { address: "127.0.0.1", port: tcp.port },
        });
      });
    }

    for (const mode of ["accept4", "socketcall-accept"]) {
      it(`a socket accepted through ia32 ${mode} and dup2()ed onto fd 1 is known inbound`, async () => {
        const child = await run(helper, [mode, "0"]);
        expect(child.status, child.stderr).toBe(0);
        await session.settle();
        const dups = inetDups(session, child.pid);
        expect(dups).toHaveLength(1);
        expect(dups[0]).toMatchObject({ syscall: "dup2", newfd: 1, origin: "accepted", local: { address: "127.0.0.1" } });
      });
    }

    it("64-bit dups are still reported once, not twice", async () => {
      const child = await run("/usr/bin/python3", [
        "-c", `import os, socket\nc = socket.create_connection(("127.0.0.1", ${tcp.port}))\nos.dup2(c.fileno(), 1)`,
      ]);
      await session.settle();
      expect(inetDups(session, child.pid)).toHaveLength(1);
    });
  });
});
