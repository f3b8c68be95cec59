/**
 * The live host's side of enforcement: verified kills through the addon's pidfd call, and the
 * pids never to kill (the daemon and its ancestors, read once from /proc: a daemon's parents do
 * not change, and a re-parented daemon's new parent is init, never killed either).
 */
import { readFileSync } from "node:fs";
import { loadBinding } from "../sensor/binding.js";
import type { Sensor } from "../sensor/sensor.js";
import { parseStat } from "../host/proc-parse.js";
import type { HostView } from "../host/host-view.js";
import type { EnforceHost } from "./enforcer.js";

/**
 * The daemon and its ancestors, each with its start time: an ancestor that exits (a terminal,
 * sudo) frees its pid, and a shell that lands on it later is not the ancestor.
 */
function ancestorsOfSelf(): Map<number, number | undefined> {
  const out = new Map<number, number | undefined>();
  let pid = process.pid;
  for (let i = 0; i < 64 && pid > 1; i++) {
    let stat;
    try {
      stat = parseStat(readFileSync(`/proc/${pid}/stat`, "utf8"));
    } catch {
      break;
    }
    out.set(pid, stat?.startTicks);
    const ppid = stat?.ppid;
    if (ppid === undefined || ppid <= 1) break;
    pid = ppid;
  }
  if (!out.has(process.pid)) out.set(process.pid, undefined);
  return out;
}

/**
 * `sensor()`: the sensor once it is open (the enforcer is made before it); `cgroups`: the host
 * view whose cgroup paths the allowlist's units and cgroups and the per-tree budget read.
 */
export function liveEnforceHost(sensor: () => Sensor | undefined, cgroups?: Pick<HostView, "cgroupPath">): EnforceHost {
  const protectedPids = ancestorsOfSelf();
  const binding = loadBinding();
  return {
    killVerified: (pid, startTicks) => binding.killVerified(pid, startTicks),
    kernelPath: () => {
      const live = sensor()?.liveProgram("enforce");
      return { live: live !== undefined, execAction: live?.startsWith("lsm/") === true ? "exec_denied" : "killed" };
    },
    protectedPids: () => protectedPids,
    now: () => Date.now(),
    ...(cgroups !== undefined ? { cgroupPath: (cgroupId: number, pid: number) => cgroups.cgroupPath(cgroupId, pid) } : {}),
  };
}
