/**
 * What a container runtime wrote down about a container: its name, image, and for a pod's
 * container the pod's name and namespace. Read from the runtime's own state files, found
 * through pid 1's root (`/proc/1/root/...`): on the host that is `/`, and in the DaemonSet
 * (hostPID, CAP_DAC_READ_SEARCH) it is still the host's filesystem, so no mount of the
 * runtimes' folders is needed. Each file is read bounded (a runtime's state files are a few
 * KB; containers/storage's list grows ~600 bytes per container) and parsed as JSON; anything
 * missing or malformed leaves the field absent, never guessed.
 *
 * Files per runtime (the runtimes' on-disk layouts, stable across their releases):
 * - docker: /var/lib/docker/containers/<id>/config.v2.json (Name, Config.Image, Config.Labels
 *   with kubelet's io.kubernetes.* labels under dockershim/cri-dockerd);
 * - containerd: /run/containerd/io.containerd.runtime.v2.task/<namespace>/<id>/config.json
 *   (the OCI spec; the CRI plugin's io.kubernetes.cri.* annotations);
 * - podman and cri-o (containers/storage): /var/lib/containers/storage/overlay-containers/
 *   containers.json (names, and image-name in its metadata) and <id>/userdata/config.json
 *   (cri-o's io.kubernetes.* annotations).
 */
import type { ContainerIdentity } from "./container.js";

export interface ContainerMetadata {
  name?: string;
  image?: string;
  podName?: string;
  podNamespace?: string;
}

/** Reads a file whole, or undefined when it is missing, unreadable or larger than maxBytes. */
export type BoundedRead = (path: string, maxBytes: number) => string | undefined;

const STATE_FILE_MAX_BYTES = 1024 * 1024;
/** containers/storage's list of every container: ~600 bytes each, so ~27,000 containers. */
const STORAGE_LIST_MAX_BYTES = 16 * 1024 * 1024;
const CONTAINERD_NAMESPACES = ["k8s.io", "moby", "default"];
const STORAGE = "/var/lib/containers/storage/overlay-containers";

type Json = Record<string, unknown>;

function parse(text: string | undefined): Json | undefined {
  if (text === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Json) : undefined;
  } catch {
    return undefined;
  }
}

function text(value: unknown): string | undefined {
  return typeof value === "string" && value.length > 0 && value.length <= 1024 ? value : undefined;
}

function record(value: unknown): Json {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Json) : {};
}

function defined(m: ContainerMetadata): ContainerMetadata | undefined {
  const out: ContainerMetadata = {};
  for (const [k, v] of Object.entries(m) as [keyof ContainerMetadata, string | undefined][]) if (v !== undefined) out[k] = v;
  return Object.keys(out).length > 0 ? out : undefined;
}

/** docker's config.v2.json. */
export function metadataOfDockerConfig(config: string): ContainerMetadata | undefined {
  const json = parse(config);
  if (json === undefined) return undefined;
  const inner = record(json.Config);
  const labels = record(inner.Labels);
  const name = text(json.Name);
  return defined({
    name: text(labels["io.kubernetes.container.name"]) ?? name?.replace(/^\//, ""),
    image: text(inner.Image),
    podName: text(labels["io.kubernetes.pod.name"]),
    podNamespace: text(labels["io.kubernetes.pod.namespace"]),
  });
}

/** An OCI runtime spec's annotations: containerd's CRI plugin or cri-o. */
export function metadataOfOciSpec(spec: string): ContainerMetadata | undefined {
  const annotations = record(parse(spec)?.annotations);
  return defined({
    name: text(annotations["io.kubernetes.cri.container-name"]) ?? text(annotations["io.kubernetes.container.name"]),
    image: text(annotations["io.kubernetes.cri.image-name"]) ?? text(annotations["io.kubernetes.cri-o.ImageName"]),
    podName: text(annotations["io.kubernetes.cri.sandbox-name"]) ?? text(annotations["io.kubernetes.pod.name"]),
    podNamespace: text(annotations["io.kubernetes.cri.sandbox-namespace"]) ?? text(annotations["io.kubernetes.pod.namespace"]),
  });
}

/** containers/storage's containers.json: the entry of container `id`. */
export function metadataOfStorageList(list: string, id: string): ContainerMetadata | undefined {
  let entries: unknown;
  try {
    entries = JSON.parse(list);
  } catch {
    return undefined;
  }
  if (!Array.isArray(entries)) return undefined;
  const entry = entries.map(record).find((e) => e.id === id);
  if (entry === undefined) return undefined;
  const names = Array.isArray(entry.names) ? entry.names : [];
  const meta = typeof entry.metadata === "string" ? record(parse(entry.metadata)) : {};
  return defined({ name: text(names[0]) ?? text(meta.name), image: text(meta["image-name"]) });
}

/** What the runtime of `container` wrote down about it, read through `read` under `root` ("/proc/1/root"). */
export function readContainerMetadata(container: ContainerIdentity, root: string, read: BoundedRead): ContainerMetadata | undefined {
  const { id, runtime } = container;
  if (!/^[0-9a-f]{64}$/.test(id)) return undefined;
  const merge = (...parts: (ContainerMetadata | undefined)[]) => defined(Object.assign({}, ...parts.filter(Boolean).reverse()) as ContainerMetadata);
  switch (runtime) {
    case "docker":
      return metadataOfDockerConfig(read(`${root}/var/lib/docker/containers/${id}/config.v2.json`, STATE_FILE_MAX_BYTES) ?? "");
    case "containerd":
      for (const ns of CONTAINERD_NAMESPACES) {
        const spec = read(`${root}/run/containerd/io.containerd.runtime.v2.task/${ns}/${id}/config.json`, STATE_FILE_MAX_BYTES);
        if (spec !== undefined) return metadataOfOciSpec(spec);
      }
      return undefined;
    case "podman":
    case "cri-o": {
      const spec = read(`${root}${STORAGE}/${id}/userdata/config.json`, STATE_FILE_MAX_BYTES);
      const list = read(`${root}${STORAGE}/containers.json`, STORAGE_LIST_MAX_BYTES);
      // The pod's names (cri-o) first, then the storage's name (podman's --name).
      return merge(spec === undefined ? undefined : metadataOfOciSpec(spec), list === undefined ? undefined : metadataOfStorageList(list, id));
    }
    default:
      return undefined;
  }
}
