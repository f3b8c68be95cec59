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
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hostAndContainerShells, inCI, kernelTier, run, startDaemon, type Daemon } from "./harness.js";

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

    const name = `sockeye-docker-test-${process.pid}`;
    const cidFile = join(work, "shell.cid");
    type Finding = { rule: { id: string }; destination?: { port: number }; process: { pid: number };
      container?: { id: string; runtime: string; name?: string; image?: { name: string } }; sockeye: { ns_pid?: number } };
    const findingsFor = (port: number) => daemon!.findings().map((f) => f.finding as Finding).filter((f) => f.destination?.port === port);
    const { port, onHost, inContainer: containerShell } = await hostAndContainerShells(
      (shell) => run("docker", ["run", "--rm", "--network", "host", "--cidfile", cidFile, "--name", name, IMAGE, "/bin/bash", "-c", shell]), findingsFor);
    const findings = () => findingsFor(port);
    expect(containerShell.status, containerShell.stderr).toBe(0);
    const containerId = readFileSync(cidFile, "utf8").trim();
    expect(containerId).toMatch(/^[0-9a-f]{64}$/);

    expect(findings().map((f) => f.rule.id)).toEqual(["TRC-101", "TRC-101"]);
    expect(findings().find((f) => f.process.pid === onHost.pid)!.container).toBeUndefined();
    const inside = findings().find((f) => f.process.pid !== onHost.pid)!;
    expect(inside.container).toEqual({ id: containerId, runtime: "docker", name, image: { name: IMAGE } });
    expect(inside.sockeye.ns_pid).toBeLessThan(10);
    expect(await daemon.stop()).toBe(0);
  }, 120_000);
});
