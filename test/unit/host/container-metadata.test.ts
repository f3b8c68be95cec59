import { describe, expect, it } from "vitest";
import {
  metadataOfDockerConfig, metadataOfOciSpec, metadataOfStorageList, readContainerMetadata,
} from "../../../src/host/container-metadata.js";

const ID = "3f".repeat(32);
const OTHER = "a1".repeat(32);

describe("container metadata from the runtimes' state files", () => {
  it("docker: the name without its slash, the image, and kubelet's labels", () => {
    expect(metadataOfDockerConfig(JSON.stringify({ Name: "/web-1", Config: { Image: "nginx:1.27", Labels: {} } }))).toEqual({ name: "web-1", image: "nginx:1.27" });
    const k8s = { Name: "/k8s_app_pod-x_ns_uid_0", Config: { Image: "app:2", Labels: {
      "io.kubernetes.container.name": "app", "io.kubernetes.pod.name": "pod-x", "io.kubernetes.pod.namespace": "prod" } } };
    expect(metadataOfDockerConfig(JSON.stringify(k8s))).toEqual({ name: "app", image: "app:2", podName: "pod-x", podNamespace: "prod" });
  });

  it("containerd's CRI annotations and cri-o's", () => {
    const containerd = { annotations: { "io.kubernetes.cri.container-name": "app", "io.kubernetes.cri.sandbox-name": "pod-y",
      "io.kubernetes.cri.sandbox-namespace": "default", "io.kubernetes.cri.image-name": "registry.local/app:3" } };
    expect(metadataOfOciSpec(JSON.stringify(containerd))).toEqual({ name: "app", image: "registry.local/app:3", podName: "pod-y", podNamespace: "default" });
    const crio = { annotations: { "io.kubernetes.container.name": "db", "io.kubernetes.pod.name": "pod-z", "io.kubernetes.pod.namespace": "data",
      "io.kubernetes.cri-o.ImageName": "postgres:16" } };
    expect(metadataOfOciSpec(JSON.stringify(crio))).toEqual({ name: "db", image: "postgres:16", podName: "pod-z", podNamespace: "data" });
    // podman's own spec names nothing.
    expect(metadataOfOciSpec(JSON.stringify({ annotations: { "io.container.manager": "libpod" } }))).toBeUndefined();
  });

  it("containers/storage's list: the entry of this id only", () => {
    const list = JSON.stringify([
      { id: OTHER, names: ["other"], metadata: JSON.stringify({ "image-name": "x:1" }) },
      { id: ID, names: ["probe-name"], metadata: JSON.stringify({ "image-name": "localhost/sockeye:latest", name: "probe-name" }) },
    ]);
    expect(metadataOfStorageList(list, ID)).toEqual({ name: "probe-name", image: "localhost/sockeye:latest" });
    expect(metadataOfStorageList(list, "0".repeat(64))).toBeUndefined();
  });

  it("malformed, oversized or hostile files leave fields absent", () => {
    expect(metadataOfDockerConfig("{not json")).toBeUndefined();
    expect(metadataOfDockerConfig("[1,2]")).toBeUndefined();
    expect(metadataOfDockerConfig(JSON.stringify({ Name: 7, Config: "x" }))).toBeUndefined();
    expect(metadataOfStorageList("{}", ID)).toBeUndefined();
    expect(metadataOfOciSpec(JSON.stringify({ annotations: { "io.kubernetes.container.name": "n".repeat(5000) } }))).toBeUndefined();
  });

  it("reads each runtime's files under the given root, bounded, and never for a malformed id", () => {
    const asked: string[] = [];
    const files = new Map<string, string>([
      [`/r/var/lib/docker/containers/${ID}/config.v2.json`, JSON.stringify({ Name: "/d" })],
      [`/r/run/containerd/io.containerd.runtime.v2.task/moby/${ID}/config.json`, JSON.stringify({ annotations: { "io.kubernetes.cri.container-name": "c" } })],
      [`/r/var/lib/containers/storage/overlay-containers/${ID}/userdata/config.json`, JSON.stringify({ annotations: { "io.kubernetes.pod.name": "p" } })],
      ["/r/var/lib/containers/storage/overlay-containers/containers.json", JSON.stringify([{ id: ID, names: ["s"] }])],
    ]);
    const read = (path: string, max: number) => {
      asked.push(path);
      expect(max).toBeGreaterThan(0);
      return files.get(path);
    };
    expect(readContainerMetadata({ id: ID, runtime: "docker" }, "/r", read)).toEqual({ name: "d" });
    expect(readContainerMetadata({ id: ID, runtime: "containerd" }, "/r", read)).toEqual({ name: "c" });
    expect(readContainerMetadata({ id: ID, runtime: "cri-o" }, "/r", read)).toEqual({ name: "s", podName: "p" });
    expect(readContainerMetadata({ id: ID, runtime: "systemd-nspawn" }, "/r", read)).toBeUndefined();
    const before = asked.length;
    expect(readContainerMetadata({ id: "../../etc", runtime: "docker" }, "/r", read)).toBeUndefined();
    expect(asked.length).toBe(before);
  });
});
