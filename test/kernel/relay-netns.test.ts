/**
 * Relay shells inside a network namespace of their own (as in a container with its own
 * network): the listener, the relay and the shell all run in a netns this test makes with
 * `unshare --net`, talking over that namespace's loopback. The sensor's /proc/net/tcp is the
 * host's namespace and does not list their sockets, so a socket no connect record names (an
 * io_uring connect, a relay connected before the sensor started) is found only in the TCP
 * table of its holder's namespace (/proc/<pid>/net/tcp; src/rules/relay/namespace-tables.ts).
 * Each relay must give exactly one RELAY-001 finding with the listener's port and the
 * namespace it ran in.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Finding } from "sockeye";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IO_URING_RELAY, PYTHON, Session, attachEngine, inCI, kernelTier, run } from "./harness.js";

const tier = kernelTier();

/** Whether this host lets us make a network namespace and bring its loopback up: probed, not assumed. */
function netnsProbe(): string | undefined {
  if (!tier.run) return undefined;
  const r = spawnSync("unshare", ["--net", "ip", "link", "set", "lo", "up"], { encoding: "utf8" });
  if (r.error !== undefined) return `unshare: ${r.error.message}`;
  if (r.status !== 0) return `'unshare --net ip link set lo up' exited ${r.status}: ${r.stderr.trim()}`;
  return undefined;
}
const cannot = netnsProbe();
if (cannot !== undefined) {
  if (inCI) throw new Error(`relay-netns: cannot make a network namespace (${cannot}): in CI this test must run`);
  console.warn(`relay-netns skipped: cannot make a network namespace (${cannot})`);
}

/**
 * A listener for one connection on 127.0.0.1:PORT (argv 1) of the namespace it runs in: it
 * creates the file argv 2 once listening and argv 2 + ".accepted" once connected to, sends a command, prints ANSWERED when its output came
 * back, then (a moment later: the rules read /proc of live processes) tells the shell to exit.
 */
const LISTENER = `
import socket, sys, time
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(1)
open(sys.argv[2], "w").close()
srv.settimeout(180)
c, _ = srv.accept()
open(sys.argv[2] + ".accepted", "w").close()
c.settimeout(180)
c.sendall(b"echo RELAY_$((6*7))\\n")
got = b""
while b"RELAY_42" not in got:
    d = c.recv(4096)
    if not d: break
    got += d
print("ANSWERED" if b"RELAY_42" in got else "NO ANSWER: %r" % got, flush=True)
time.sleep(1.5)
c.sendall(b"exit\\n")
time.sleep(0.5)
c.close()
`;

/**
 * Bash run as `unshare --net bash -c SCRIPT bash LISTENER PORT READY RELAY...`: brings the new
 * namespace's loopback up, starts the listener, waits until it listens, runs the relay command
 * (the rest of the arguments) under a kill timeout, and waits for the listener's verdict.
 */
const IN_NETNS = `
set -u
listener=$1 port=$2 ready=$3; shift 3
ip link set lo up || exit 90
"${PYTHON}" -c "$listener" "$port" "$ready" & l=$!
for i in $(seq 300); do [ -e "$ready" ] && break; sleep 0.1; done
[ -e "$ready" ] || { echo "listener not up"; kill $l; exit 91; }
timeout -s KILL 150 "$@" </dev/null >/dev/null 2>&1
wait $l
`;

interface RelayFinding extends Finding {
  destination: { ip: string; port: number };
  sockeye: Finding["sockeye"] & {
    namespaces?: { net?: number };
    relay: { program: { name: string }; remote: { address: string; port: number }; connected_by: unknown; connect_unseen?: boolean };
  };
}

/** A port for a listener in a fresh namespace: any is free there; random so findings of one test cannot pass for another's. */
const port = () => 20_000 + Math.floor(Math.random() * 40_000);

describe.runIf(tier.run && cannot === undefined)("kernel: RELAY-001 for relay shells inside their own network namespace", () => {
  let session: Session;
  const findings: RelayFinding[] = [];
  const dir = mkdtempSync(join(tmpdir(), "sockeye-relay-netns-"));
  const hostNet = Number(/net:\[(\d+)\]/.exec(readlinkSync("/proc/self/ns/net"))![1]);
  /** The relay started before the sensor: its port, the file that lets its shell start, and its namespace's output. */
  let early: { port: number; go: string; done: Promise<{ status: number | null; stdout: string }> };

  beforeAll(async () => {
    // A relay connected before the sensor starts, in its own netns: socat holds the
    // connection, and the shell it runs starts only once the test creates `go`, so the shell's
    // exec is seen and the connect is not.
    const p = port(), go = join(dir, "go"), ready = join(dir, "early-ready");
    const child = spawn("unshare", ["--net", "bash", "-c", IN_NETNS, "bash", LISTENER, String(p), ready,
      "socat", `TCP:127.0.0.1:${p}`, `SYSTEM:while test ! -e ${go}; do sleep 0.2; done; exec sh -i`], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stdout += d));
    const done = new Promise<{ status: number | null; stdout: string }>((resolve) => child.on("exit", (code) => resolve({ status: code, stdout })));
    early = { port: p, go, done };
    // Connected before the sensor: wait until the listener has accepted socat's connection.
    const accepted = `${ready}.accepted`;
    const deadline = Date.now() + 45_000;
    while (!existsSync(accepted) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(accepted), `the early relay did not connect within 45 s: ${stdout}`).toBe(true);

    session = await Session.open();
    attachEngine(session, findings);
  }, 60_000);
  afterAll(() => {
    if (early !== undefined && !existsSync(early.go)) writeFileSync(early.go, "");
    session?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const summary = (found: RelayFinding[]) => JSON.stringify(found.map((f) => ({ rule: f.rule.id, pid: f.process.pid, name: f.process.name, ip: f.destination?.ip })));

  /** The one finding for `p`, checked to be RELAY-001 to 127.0.0.1:p from a namespace other than the sensor's. */
  function theFinding(p: number): RelayFinding {
    const found = findings.filter((f) => f.destination?.port === p);
    expect(found.map((f) => f.rule.id), summary(found)).toEqual(["RELAY-001"]);
    const f = found[0]!;
    expect(f.destination.ip).toBe("127.0.0.1");
    expect(f.sockeye.relay.remote).toEqual({ address: "127.0.0.1", port: p });
    // The shell ran in the namespace the test made, not the sensor's.
    expect(f.sockeye.namespaces?.net).toBeGreaterThan(0);
    expect(f.sockeye.namespaces?.net).not.toBe(hostNet);
    return f;
  }

  async function inNetns(relay: string[]): Promise<number> {
    const p = port();
    const r = await run("unshare", ["--net", "bash", "-c", IN_NETNS, "bash", LISTENER, String(p), join(dir, `ready-${p}`), ...relay.map((a) => a.replaceAll("PORT", String(p)))]);
    expect(r.stdout, `the shell did not answer in the netns (exit ${r.status}): ${r.stdout} ${r.stderr}`).toContain("ANSWERED");
    await session.settle();
    return p;
  }

  it("a relay connected in the netns before the sensor started, its shell started after: one RELAY-001 (connect_unseen)", async () => {
    writeFileSync(early.go, "");
    const r = await early.done;
    expect(r.stdout, `the early relay's shell did not answer (exit ${r.status})`).toContain("ANSWERED");
    await session.settle();
    const f = theFinding(early.port);
    expect(f.sockeye.relay.program.name).toBe("socat");
    // prepare() read the sensor's namespace only; the shell's chain found it in socat's.
    expect(f.sockeye.relay.connect_unseen).toBe(true);
    expect(f.sockeye.relay.connected_by).toBeNull();
  }, 60_000);

  it("ncat 127.0.0.1 P -e /bin/sh in the netns: one RELAY-001, the connect seen", async () => {
    const p = await inNetns(["ncat", "127.0.0.1", "PORT", "-e", "/bin/sh"]);
    const f = theFinding(p);
    expect(f.sockeye.relay.program.name).toBe("ncat");
    expect(f.sockeye.relay.connected_by).not.toBeNull();
  }, 60_000);

  it("a relay whose connect goes through io_uring, in the netns: one RELAY-001, found in the netns's TCP table (connect_unseen)", async () => {
    const p = await inNetns([PYTHON, "-c", IO_URING_RELAY, "127.0.0.1", "PORT"]);
    const f = theFinding(p);
    expect(f.sockeye.relay.program.name).toMatch(/^python3/);
    // No connect record, and /proc/net/tcp (the sensor's namespace) has no such socket.
    expect(f.sockeye.relay.connect_unseen).toBe(true);
    expect(f.sockeye.relay.connected_by).toBeNull();
  }, 60_000);

});
