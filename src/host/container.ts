/**
 * Which container a process runs in, from its cgroup path: container runtimes and kubelet name
 * the cgroups they make after the container and the pod. The full 64-hex id is kept (tools
 * that cut it to 12, 15 or 31 characters make joins across them ambiguous; cut it in the SIEM
 * if you must, never here).
 */

export type ContainerRuntime = "docker" | "containerd" | "cri-o" | "podman" | "systemd-nspawn" | "lxc";

export interface ContainerIdentity {
  /** The runtime's id: 64 hex characters, or the machine name for systemd-nspawn and lxc. */
  id: string;
  runtime: ContainerRuntime;
  /** The Kubernetes pod's UID, when kubelet made the cgroup. */
  podUid?: string;
  /** What the runtime wrote down (container-metadata.ts), when the daemon could read it. */
  name?: string;
  image?: string;
  podName?: string;
  podNamespace?: string;
}

const HEX64 = /^[0-9a-f]{64}$/;

/** Runtime prefixes of a systemd scope (`<prefix><id>.scope`) or a cgroupfs folder (`<prefix><id>`). */
const PREFIXES: [string, ContainerRuntime][] = [
  ["docker-", "docker"],
  ["cri-containerd-", "containerd"],
  ["crio-", "cri-o"],
  ["libpod-", "podman"],
];
/** The monitor processes beside a container (conmon), which are not the container. */
const MONITORS = ["crio-conmon-", "libpod-conmon-"];

/** A kubelet pod cgroup: `kubepods-burstable-pod<uid, _ for ->.slice` or `pod<uid>`. */
function podUidOf(component: string): string | undefined {
  const slice = /^kubepods(?:-[a-z]+)*-pod([0-9a-f_]{36})\.slice$/.exec(component);
  if (slice !== null) return slice[1]!.replaceAll("_", "-");
  const folder = /^pod([0-9a-f-]{36})$/.exec(component);
  return folder?.[1];
}

/**
 * The container a cgroup path (v2, or a v1 hierarchy's path) belongs to, or undefined for a
 * process of the host. The innermost container component wins (a container in a pod, a
 * podman container in a systemd scope).
 */
export function containerOfCgroupPath(path: string): ContainerIdentity | undefined {
  const components = path.split("/").filter(Boolean);
  let podUid: string | undefined;
  let found: ContainerIdentity | undefined;
  let underKubepods = false;
  let underDocker = false;
  for (const component of components) {
    podUid = podUidOf(component) ?? podUid;
    if (component === "kubepods" || component.startsWith("kubepods")) underKubepods = true;
    if (component === "docker") underDocker = true;
    if (MONITORS.some((m) => component.startsWith(m))) return undefined;
    const bare = component.endsWith(".scope") ? component.slice(0, -".scope".length) : component;
    for (const [prefix, runtime] of PREFIXES) {
      if (bare.startsWith(prefix) && HEX64.test(bare.slice(prefix.length))) found = { id: bare.slice(prefix.length), runtime };
    }
    // cgroupfs drivers: /docker/<id>, /kubepods/<qos>/pod<uid>/<id> (the runtime is not named:
    // containerd is kubelet's usual one; cri-o names its scopes and is caught above).
    if (HEX64.test(component)) found = { id: component, runtime: underDocker ? "docker" : underKubepods ? "containerd" : "docker" };
    const nspawn = /^(?:systemd-nspawn@(.+)\.service|machine-(.+)\.scope)$/.exec(component);
    if (nspawn !== null) found = { id: (nspawn[1] ?? nspawn[2]!).replaceAll("\\x2d", "-"), runtime: "systemd-nspawn" };
    const lxc = /^lxc\.payload\.(.+)$/.exec(component);
    if (lxc !== null) found = { id: lxc[1]!, runtime: "lxc" };
  }
  if (found === undefined) return undefined;
  return podUid !== undefined ? { ...found, podUid } : found;
}

/** The lines of /proc/<pid>/cgroup: `hierarchy-id:controllers:path`, "0" for the unified hierarchy. */
function procCgroupLines(text: string): { hierarchy: string; path: string }[] {
  return text.split("\n").filter(Boolean).map((l) => {
    const first = l.indexOf(":");
    const second = l.indexOf(":", first + 1);
    return { hierarchy: l.slice(0, first), path: l.slice(second + 1) };
  });
}

/**
 * The cgroup path of a process from the text of /proc/<pid>/cgroup: the unified hierarchy's
 * (`0::/path`) where there is one, else the first v1 hierarchy's that names a container.
 */
export function cgroupPathOfProcFile(text: string): string | undefined {
  const lines = procCgroupLines(text);
  const unified = lines.find((l) => l.hierarchy === "0");
  const v1 = lines.find((l) => l.hierarchy !== "0" && containerOfCgroupPath(l.path) !== undefined);
  // On a hybrid host the unified path may be "/" while v1 hierarchies name the container.
  if (unified !== undefined && (containerOfCgroupPath(unified.path) !== undefined || v1 === undefined)) return unified.path;
  return v1?.path ?? unified?.path;
}

/**
 * The path, in the first cgroup v1 hierarchy of /proc/<pid>/cgroup that names one, of the
 * process's container; undefined when no v1 hierarchy does (or there is none: a v2 host). On a
 * hybrid host a runtime working in v1 mode may put a container in the v1 hierarchies only
 * (`4:cpu,cpuacct:/docker/<id>`, `1:name=systemd:/system.slice/docker-<id>.scope`), leaving its
 * unified-hierarchy cgroup, the one the kernel's cgroup id names, a host one.
 */
export function v1ContainerPathOfProcFile(text: string): string | undefined {
  return procCgroupLines(text).find((l) => l.hierarchy !== "0" && containerOfCgroupPath(l.path) !== undefined)?.path;
}

/** Whether /proc/<pid>/cgroup lists cgroup v1 hierarchies: every process is in each one the kernel has. */
export function listsV1Hierarchies(text: string): boolean {
  return procCgroupLines(text).some((l) => l.hierarchy !== "0");
}
