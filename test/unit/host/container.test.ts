import { describe, expect, it } from "vitest";
import { cgroupPathOfProcFile, containerOfCgroupPath, listsV1Hierarchies, v1ContainerPathOfProcFile } from "../../../src/host/container.js";

const ID = "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899";
const UID = "0a1b2c3d-4e5f-6789-abcd-ef0123456789";
const UID_ = UID.replaceAll("-", "_");

describe("containerOfCgroupPath", () => {
  it.each([
    ["docker, systemd driver", `/system.slice/docker-${ID}.scope`, { id: ID, runtime: "docker" }],
    ["docker, cgroupfs driver", `/docker/${ID}`, { id: ID, runtime: "docker" }],
    ["podman as design §1 measured it", `/libpod_parent/libpod-${ID}`, { id: ID, runtime: "podman" }],
    ["podman, systemd driver", `/machine.slice/libpod-${ID}.scope/container`, { id: ID, runtime: "podman" }],
    ["containerd under kubelet, systemd driver", `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/cri-containerd-${ID}.scope`, { id: ID, runtime: "containerd", podUid: UID }],
    ["cri-o under kubelet, systemd driver", `/kubepods.slice/kubepods-pod${UID_}.slice/crio-${ID}.scope`, { id: ID, runtime: "cri-o", podUid: UID }],
    ["kubelet, cgroupfs driver", `/kubepods/besteffort/pod${UID}/${ID}`, { id: ID, runtime: "containerd", podUid: UID }],
    ["systemd-nspawn", "/machine.slice/systemd-nspawn@web\\x2d1.service/payload", { id: "web-1", runtime: "systemd-nspawn" }],
    ["lxc", "/lxc.payload.builder/init.scope", { id: "builder", runtime: "lxc" }],
  ])("%s", (_what, path, expected) => {
    expect(containerOfCgroupPath(path)).toEqual(expected);
  });

  it.each([
    ["a host service", "/system.slice/ssh.service"],
    ["a user session", "/user.slice/user-1000.slice/session-3.scope"],
    ["the root", "/"],
    ["podman's monitor (conmon) is not the container", `/machine.slice/libpod-conmon-${ID}.scope`],
    ["cri-o's monitor", `/kubepods.slice/crio-conmon-${ID}.scope`],
    ["a prefix with a short id", "/system.slice/docker-abc.scope"],
  ])("none for %s", (_what, path) => {
    expect(containerOfCgroupPath(path)).toBeUndefined();
  });
});

describe("cgroupPathOfProcFile", () => {
  it("takes the unified path on a v2 host", () => {
    expect(cgroupPathOfProcFile(`0::/system.slice/docker-${ID}.scope\n`)).toBe(`/system.slice/docker-${ID}.scope`);
  });
  it("takes the v1 path that names the container on a hybrid host whose unified path is the root", () => {
    const text = `12:memory:/libpod_parent/libpod-${ID}\n11:cpu,cpuacct:/libpod_parent/libpod-${ID}\n0::/\n`;
    expect(cgroupPathOfProcFile(text)).toBe(`/libpod_parent/libpod-${ID}`);
  });
  it("gives the unified path of a host process", () => {
    expect(cgroupPathOfProcFile("12:memory:/\n0::/init.scope\n")).toBe("/init.scope");
  });
});

describe("findings carry the container", () => {
  it("from the process view's container lookup, with the pod's UID as the orchestrator resource", async () => {
    const { buildFinding } = await import("../../../src/engine/finding.js");
    const processes = {
      get: () => undefined,
      ancestors: () => [],
      container: (cgroupId: number) => (cgroupId === 77 ? { id: ID, runtime: "containerd" as const, podUid: UID } : undefined),
    };
    const task = { pid: 10, tid: 10, ppid: 1, uid: 0, gid: 0, cgroupId: 77, startNs: 5, comm: "bash", parentComm: "sh" };
    const meta = { id: "T-1", name: "t", description: "d", severity: "high" as const, source: "test", threat: [] };
    const event = { kind: "exec" as const, timeMs: 1, task, filename: "/bin/bash", args: ["bash"], argsTruncated: false, stdio: [] };
    const finding = buildFinding({ meta, event, detection: {}, processes, hostName: "h", createdMs: 1 } as unknown as Parameters<typeof buildFinding>[0]);
    expect(finding.container).toEqual({ id: ID, runtime: "containerd" });
    expect(finding.orchestrator).toEqual({ type: "kubernetes", resource: { type: "pod", id: UID } });
    const onHost = buildFinding({ meta, event: { ...event, task: { ...task, cgroupId: 1 } }, detection: {}, processes, hostName: "h", createdMs: 1 } as unknown as Parameters<typeof buildFinding>[0]);
    expect(onHost.container).toBeUndefined();
  });
});

/**
 * A hybrid host (cgroup v2 at /sys/fs/cgroup/unified) whose runtime works in v1 mode may put a
 * container in the v1 hierarchies only: its unified-hierarchy cgroup, the one the kernel's cgroup
 * id names, stays the one it inherited (the shim's service, or the root). The hierarchy list is
 * this machine kind's (/proc/self/cgroup: cpu and cpuacct apart, name=systemd); the container
 * paths follow each runtime's naming (design §10). None of these runtimes leaves a container
 * v1-only here (podman and docker's runc join the unified hierarchy too, design §1), so these
 * layouts are written, not captured.
 */
function hybridFile(v1Path: string, unified: string, systemdPath = v1Path): string {
  const v1 = ["pids", "blkio", "freezer", "devices", "memory", "cpuset", "cpuacct", "cpu"];
  return [`9:name=systemd:${systemdPath}`, ...v1.map((c, i) => `${8 - i}:${c}:${v1Path}`), `0::${unified}`, ""].join("\n");
}

describe("a container in cgroup v1 hierarchies only", () => {
  it.each([
    ["docker, cgroupfs driver (its shim's service in the unified hierarchy)", hybridFile(`/docker/${ID}`, "/system.slice/containerd.service"), `/docker/${ID}`, { id: ID, runtime: "docker" }],
    ["docker, systemd driver", hybridFile(`/system.slice/docker-${ID}.scope`, "/system.slice/docker.service"), `/system.slice/docker-${ID}.scope`, { id: ID, runtime: "docker" }],
    ["podman, cgroupfs manager (the unified root)", hybridFile(`/libpod_parent/libpod-${ID}`, "/"), `/libpod_parent/libpod-${ID}`, { id: ID, runtime: "podman" }],
    ["podman, systemd manager", hybridFile(`/machine.slice/libpod-${ID}.scope`, "/user.slice/user-0.slice/session-1.scope"), `/machine.slice/libpod-${ID}.scope`, { id: ID, runtime: "podman" }],
    [
      "containerd under kubelet, systemd driver",
      hybridFile(`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/cri-containerd-${ID}.scope`, "/system.slice/containerd.service"),
      `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/cri-containerd-${ID}.scope`,
      { id: ID, runtime: "containerd", podUid: UID },
    ],
    [
      "cri-o under kubelet, systemd driver",
      hybridFile(`/kubepods.slice/kubepods-pod${UID_}.slice/crio-${ID}.scope`, "/system.slice/crio.service"),
      `/kubepods.slice/kubepods-pod${UID_}.slice/crio-${ID}.scope`,
      { id: ID, runtime: "cri-o", podUid: UID },
    ],
    ["kubelet, cgroupfs driver", hybridFile(`/kubepods/burstable/pod${UID}/${ID}`, "/system.slice/containerd.service"), `/kubepods/burstable/pod${UID}/${ID}`, { id: ID, runtime: "containerd", podUid: UID }],
    // systemd's own hierarchy only (the controllers left at the root): still the container.
    ["docker, name=systemd only", hybridFile("/", "/system.slice/containerd.service", `/docker/${ID}`), `/docker/${ID}`, { id: ID, runtime: "docker" }],
  ])("%s", (_what, text, v1Path, expected) => {
    expect(v1ContainerPathOfProcFile(text)).toBe(v1Path);
    expect(containerOfCgroupPath(v1ContainerPathOfProcFile(text)!)).toEqual(expected);
    // What a process's own file says while it lives: the v1 path, not the unified host one.
    expect(cgroupPathOfProcFile(text)).toBe(v1Path);
    expect(listsV1Hierarchies(text)).toBe(true);
  });

  it.each([
    ["a host process of this hybrid host", hybridFile("/", "/")],
    ["a host service", hybridFile("/system.slice/ssh.service", "/system.slice/ssh.service")],
    ["podman's monitor beside a v1-only container", hybridFile("/libpod_parent/conmon", "/")],
    ["cri-o's monitor", hybridFile(`/kubepods.slice/crio-conmon-${ID}.scope`, "/system.slice/crio.service")],
    ["a v2 host's container (no v1 line to read)", `0::/system.slice/docker-${ID}.scope\n`],
  ])("no v1 container for %s", (_what, text) => {
    expect(v1ContainerPathOfProcFile(text)).toBeUndefined();
  });

  it("tells a v2 host (nothing to read per finding) from a hybrid one", () => {
    expect(listsV1Hierarchies("0::/init.scope\n")).toBe(false);
    expect(listsV1Hierarchies(hybridFile("/", "/"))).toBe(true);
  });
});
