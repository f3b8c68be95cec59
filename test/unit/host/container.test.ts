import { describe, expect, it } from "vitest";
import { cgroupPathOfProcFile, containerOfCgroupPath } from "../../../src/host/container.js";

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
