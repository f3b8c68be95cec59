/**
 * Deployed as fleets run it. The image (packaging/container: a minimal Debian root filesystem,
 * no compiler, the `npm pack` artifact installed offline) run exactly as the DaemonSet
 * (packaging/kubernetes/daemonset.yaml, read here: hostPID, its capabilities, seccomp profile,
 * read-only root, mounts) starts, and reports a reverse shell on the host and one in another
 * container.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { parseAllDocuments } from "yaml";
import { hostAndContainerShells, inCI, kernelTier, run } from "./harness.js";

const tier = kernelTier();
const hasPodman = spawnSync("podman", ["--version"]).status === 0 && spawnSync("debootstrap", ["--version"]).status === 0;
if (tier.run && !hasPodman && inCI) throw new Error("image test: podman or debootstrap is missing in CI (bash scripts/setup.sh --dev installs them)");
if (tier.run && !hasPodman) console.warn("image test skipped: podman or debootstrap not installed (bash scripts/setup.sh --dev)");

const MANIFEST = "packaging/kubernetes/daemonset.yaml";
const TAG = "localhost/sockeye-test:image-test";
// runc: crun refuses hybrid cgroup hosts; the ulimits stay under a 20000 hard RLIMIT_NOFILE.
const PODMAN = ["--runtime", "runc"];
const RUN = ["run", "--rm", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"];

interface Probe { exec: { command: string[] } }
interface Container {
  args: string[];
  livenessProbe: Probe;
  readinessProbe: Probe;
  securityContext: { allowPrivilegeEscalation: boolean; readOnlyRootFilesystem: boolean; runAsUser: number; privileged: boolean;
    capabilities: { drop: string[]; add: string[] }; seccompProfile: { type: string; localhostProfile: string } };
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface PodSpec {
  hostPID: boolean;
  hostNetwork: boolean;
  containers: Container[];
  volumes: { name: string; hostPath?: { path: string }; emptyDir?: object }[];
}

/** The DaemonSet's pod spec, and the podman options that run a container as it says. */
function daemonSetAsPodman(): { spec: PodSpec; options: string[]; args: string[]; probes: string[][] } {
  const docs = parseAllDocuments(readFileSync(MANIFEST, "utf8")).map((d) => d.toJS() as { kind: string; spec: { template: { spec: PodSpec } } });
  const spec = docs.find((d) => d.kind === "DaemonSet")!.spec.template.spec;
  const [container] = spec.containers;
  const sc = container!.securityContext;
  const options = [
    ...(spec.hostPID ? ["--pid", "host"] : []),
    ...(spec.hostNetwork ? ["--network", "host"] : []),
    "--user", String(sc.runAsUser),
    ...sc.capabilities.drop.flatMap((c) => ["--cap-drop", c.toLowerCase()]),
    ...sc.capabilities.add.flatMap((c) => ["--cap-add", c.toLowerCase()]),
    ...(sc.readOnlyRootFilesystem ? ["--read-only"] : []),
    ...(sc.allowPrivilegeEscalation ? [] : ["--security-opt", "no-new-privileges"]),
    "--security-opt", `seccomp=${join("packaging/kubernetes", basename(sc.seccompProfile.localhostProfile))}`,
  ];
  for (const mount of container!.volumeMounts) {
    const volume = spec.volumes.find((v) => v.name === mount.name)!;
    if (volume.hostPath !== undefined) options.push("-v", `${volume.hostPath.path}:${mount.mountPath}${mount.readOnly === true ? ":ro" : ""}`);
    else options.push("--tmpfs", mount.mountPath);
  }
  return { spec, options, args: container!.args, probes: [container!.livenessProbe.exec.command, container!.readinessProbe.exec.command] };
}

describe("packaging/kubernetes/daemonset.yaml", () => {
  it("is least privilege: no privileged, no SYS_ADMIN, every capability dropped but the unit's", () => {
    const { spec } = daemonSetAsPodman();
    const sc = spec.containers[0]!.securityContext;
    expect(sc.privileged).toBe(false);
    expect(sc.capabilities.drop).toEqual(["ALL"]);
    const unit = readFileSync("packaging/sockeye.service", "utf8").match(/^CapabilityBoundingSet=(.+)$/m)![1]!.trim().split(/\s+/).map((c) => c.replace(/^CAP_/, ""));
    expect([...sc.capabilities.add].sort()).toEqual([...unit].sort());
    expect(sc.seccompProfile.type).toBe("Localhost");
    const profile = JSON.parse(readFileSync(join("packaging/kubernetes", basename(sc.seccompProfile.localhostProfile)), "utf8")) as { syscalls: { names: string[]; action: string }[] };
    const denied = profile.syscalls.filter((s) => s.action === "SCMP_ACT_ERRNO").flatMap((s) => s.names);
    expect(denied).toEqual(expect.arrayContaining(["init_module", "kexec_load", "mount", "setns", "ptrace"]));
    expect(denied).not.toContain("bpf");
    expect(denied).not.toContain("perf_event_open");
  });
});

describe.runIf(tier.run && hasPodman)("kernel: the image, run as the DaemonSet runs it", () => {
  const work = mkdtempSync(join(tmpdir(), "sockeye-image-"));
  let daemon: ChildProcess | undefined;

  beforeAll(() => {
    const built = spawnSync("bash", ["packaging/container/build-image.sh", TAG], { encoding: "utf8" });
    expect(built.status, built.stderr).toBe(0);
  }, 420_000);
  afterAll(() => {
    if (daemon?.exitCode === null) daemon.kill("SIGKILL");
    spawnSync("podman", ["rmi", "-f", TAG]);
    rmSync(work, { recursive: true, force: true });
  });

  it("carries the artifact, with its dependencies, and no compiler", async () => {
    const packed = spawnSync("npm", ["pack", "--ignore-scripts", "--silent", "--pack-destination", work], { encoding: "utf8" });
    expect(packed.status, packed.stderr).toBe(0);
    const listing = spawnSync("tar", ["tzf", join(work, packed.stdout.trim())], { encoding: "utf8" }).stdout.split("\n");
    expect(listing).toContain("package/build/Release/sockeye.node");
    for (const dep of Object.keys((JSON.parse(readFileSync("package.json", "utf8")) as { dependencies: Record<string, string> }).dependencies))
      expect(listing, `${dep} is bundled`).toContain(`package/node_modules/${dep}/package.json`);
    const tools = await run("podman", [...PODMAN, ...RUN, "--network", "none", "--entrypoint", "/bin/sh", TAG, "-c",
      "for t in cc gcc clang cmake make bpftool; do command -v $t; done; ls /usr/include/bpf /usr/include/libelf.h 2>/dev/null; sockeye --version"]);
    expect(tools.stdout.trim()).toBe((JSON.parse(readFileSync("package.json", "utf8")) as { version: string }).version);
  }, 60_000);

  it("starts with the manifest's securityContext and mounts, and reports a shell on the host and one in another container", async () => {
    const { options, args, probes } = daemonSetAsPodman();
    const name = `sockeye-image-test-${process.pid}`;
    daemon = spawn("podman", [...PODMAN, ...RUN, "--name", name, ...options, TAG, ...args, "--stats-interval", "0"], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    daemon.stdout!.on("data", (d) => (stdout += d));
    daemon.stderr!.on("data", (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => daemon!.on("exit", (code) => resolve(code)));
    const deadline = Date.now() + 30_000;
    while (!stderr.includes('"message":"sensor ready"') && daemon.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(stderr).toContain('"message":"sensor ready"');
    expect(stderr).not.toMatch(/running without CAP_/);
    // The manifest's probes, run in the container as kubelet runs them.
    for (const probe of probes) {
      const answered = await run("podman", ["exec", name, ...probe]);
      expect(answered.status, `${probe.join(" ")}: ${answered.stderr}`).toBe(0);
      expect(answered.stdout).toMatch(/^(ready|degraded)/);
    }

    const cidFile = join(work, "shell.cid");
    type Finding = { rule: { id: string }; destination?: { port: number }; process: { name: string; pid: number }; container?: { id: string; runtime: string; name?: string; image?: { name: string } };
      sockeye: { namespaces?: { pid?: number; mnt?: number; net?: number }; ns_pid?: number } };
    const findingsFor = (port: number) => stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Finding).filter((f) => f.destination?.port === port);
    const { port, onHost, inContainer: containerShell } = await hostAndContainerShells(
      (shell) => run("podman", [...PODMAN, ...RUN, "--network", "host", "--cidfile", cidFile, "--name", `${name}-shell`, "--entrypoint", "/bin/bash", TAG, "-c", shell]), findingsFor);
    const findings = () => findingsFor(port);
    expect(containerShell.status, containerShell.stderr).toBe(0);
    const containerId = readFileSync(cidFile, "utf8").trim();
    expect(findings().map((f) => f.rule.id)).toEqual(["TRC-101", "TRC-101"]);
    const pids = findings().map((f) => f.process.pid);
    expect(pids).toContain(onHost.pid);
    expect(pids.filter((pid) => pid !== onHost.pid)).toHaveLength(1);
    // The container's full id and runtime, from its cgroup, and its name and image from the
    // runtime's state files read through pid 1's root; none for the shell on the host.
    expect(findings().find((f) => f.process.pid === onHost.pid)!.container).toBeUndefined();
    expect(findings().find((f) => f.process.pid !== onHost.pid)!.container).toEqual({ id: containerId, runtime: "podman", name: `${name}-shell`, image: { name: TAG } });
    // Namespaces from the kernel's record: the container's own pid and mount namespaces (its
    // shell is a low pid there), the host's network (--network host); the host's shell has the host's.
    const hostNs = (ns: string) => Number(/\[(\d+)\]/.exec(readlinkSync(`/proc/self/ns/${ns}`))![1]);
    const host = { pid: hostNs("pid"), mnt: hostNs("mnt"), net: hostNs("net") };
    const onHostFinding = findings().find((f) => f.process.pid === onHost.pid)!;
    expect(onHostFinding.sockeye.namespaces).toEqual(host);
    expect(onHostFinding.sockeye.ns_pid).toBeUndefined();
    const inContainerFinding = findings().find((f) => f.process.pid !== onHost.pid)!;
    expect(inContainerFinding.sockeye.namespaces!.net).toBe(host.net);
    expect(inContainerFinding.sockeye.namespaces!.pid).not.toBe(host.pid);
    expect(inContainerFinding.sockeye.namespaces!.mnt).not.toBe(host.mnt);
    expect(inContainerFinding.sockeye.ns_pid).toBeLessThan(10);

    daemon.kill("SIGTERM");
    expect(await exited).toBe(0);
  }, 90_000);
});
