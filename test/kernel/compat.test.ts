/**
 * ia32 syscalls (int $0x80 from a 64-bit program here, as from any 32-bit binary): syscall
 * tracepoints skip them, so by default they go unseen, and the report says so; with
 * compatSyscalls the raw sys_exit program reports them like their 64-bit twins.
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

describe.runIf(tier.run)("kernel: ia32 syscalls", () => {
  let helper: string;
  let tcp: TcpListener;

  beforeAll(async () => {
    helper = join(mkdtempSync(join(tmpdir(), "sockeye-ia32-")), "ia32-syscalls");
    // cc comes with scripts/setup.sh (the VM tier builds its guest helper with it too).
    const cc = spawnSync("cc", ["-O2", "-o", helper, SOURCE], { encoding: "utf8" });
    if (cc.status !== 0) throw new Error(`cannot build the ia32 helper with cc: ${cc.error?.message ?? cc.stderr}`);
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
