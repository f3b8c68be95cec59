/**
 * An inetd-style service: accept(), fork, dup2 the accepted socket onto 0-2, exec. The
 * sensor marks the socket accepted (inbound). In TRC-101's tracee profile the allowlist
 * suppresses it when the service's executable is listed, and only then; the precise profile
 * (the default) needs no list: cat on an accepted socket is a service hand-off.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import net from "node:net";
import { Engine, ProcHostView, ProcessTable, createTrc101Rule, type SocketDupEvent } from "sockeye";
import { Session, kernelTier, PYTHON } from "./harness.js";

const tier = kernelTier();

/** A tiny inetd: serves one connection with /bin/cat on the accepted socket as stdio. */
const INETD = `
import os, socket, sys
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
print(srv.getsockname()[1], flush=True)
conn, _ = srv.accept()
if os.fork() == 0:
    for fd in (0, 1, 2): os.dup2(conn.fileno(), fd)
    os.execv("/bin/cat", ["cat"])
os.wait()
`;

async function serveOnce(): Promise<{ pid: number }> {
  const inetd = spawn(PYTHON, ["-c", INETD], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve) => inetd.stdout.once("data", (d) => resolve(Number(String(d).trim()))));
  const client = net.connect(port, "127.0.0.1");
  await new Promise((r) => client.once("connect", r));
  client.end("hello\n");
  await new Promise((r) => inetd.once("exit", r));
  client.destroy();
  return { pid: inetd.pid! };
}

describe.runIf(tier.run)("kernel: inbound sockets on stdio", () => {
  let session: Session;
  beforeAll(async () => { session = await Session.open(); });
  afterAll(() => session?.close());

  it("an accepted socket is marked inbound, and suppressed only when its executable is allowlisted", async () => {
    const { pid } = await serveOnce();
    await session.settle();
    const dups = session.events.filter(
      (e): e is SocketDupEvent => e.kind === "socket_dup" && e.task.ppid === pid && e.family === "inet",
    );
    expect(dups.map((d) => d.newfd)).toEqual([0, 1, 2]);
    for (const d of dups) expect(d.origin).toBe("accepted");

    const python = PYTHON; // the table keeps the exec filename as given
    const replay = (allow: boolean, profile: "tracee" | "precise" = "tracee") => {
      const processes = new ProcessTable({ host: new ProcHostView() });
      processes.seedFromProc();
      const rule = createTrc101Rule({ profile, allowlist: allow ? [{ label: "test-inetd", executable: python }] : [] });
      const engine = new Engine({ rules: [rule], processes });
      const findings = session.events.filter((e) => e.task.pid === pid || e.task.ppid === pid).flatMap((e) => engine.handle(e));
      return { findings, stats: engine.stats() };
    };

    const open = replay(false);
    expect(open.findings).toHaveLength(1);
    expect(open.findings[0]).toMatchObject({ network: { direction: "ingress" }, finding: { "IP address": "127.0.0.1" } });

    const allowed = replay(true);
    expect(allowed.findings).toEqual([]);
    expect(allowed.stats.suppressedByRule["TRC-101"]).toEqual({ "allowlist:test-inetd": 3 }) // one per fd: suppression is counted before folding;

    const precise = replay(false, "precise");
    expect(precise.findings).toEqual([]);
    expect(precise.stats.suppressedByRule["TRC-101"]).toEqual({ service_handoff: 1 });
  });
});
