/**
 * A container in cgroup v1 hierarchies only: what a runtime in v1 mode leaves on a hybrid host
 * (its unified-hierarchy cgroup, the one every event's cgroup id names, stays a host one). No
 * runtime here does that (podman and docker's runc join the unified hierarchy too: design.md
 * §1), so the test makes the cgroup itself, laid out as docker's cgroupfs driver names it
 * (`/docker/<64-hex id>`), in a named v1 hierarchy of its own (mountable on v1, hybrid and v2
 * hosts alike). A reverse shell that moved itself there is named that container from the v1
 * line of its /proc/<pid>/cgroup; a reverse shell of the same unified cgroup that did not move
 * is the host's.
 */
import { afterAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hostAndContainerShells, inCI, kernelTier, run, startDaemon, type Daemon } from "./harness.js";

const tier = kernelTier();
const hierarchy = mkdtempSync(join(tmpdir(), "sockeye-v1-"));
const mount = () => spawnSync("mount", ["-t", "cgroup", "-o", "none,name=sockeye-kt", "cgroup", hierarchy], { encoding: "utf8" });
// A probe, undone at once: the test mounts it again itself, so a filtered-out run leaves nothing.
const mounted = tier.run && mount().status === 0 && spawnSync("umount", [hierarchy]).status === 0;
// Refused only where the kernel has named v1 hierarchies turned off (cgroup_no_v1=named): then
// no runtime can leave a container v1-only either.
if (!mounted) rmdirSync(hierarchy);
if (tier.run && !mounted && inCI) throw new Error("cgroup v1 test: mounting a named cgroup v1 hierarchy was refused in CI");
if (tier.run && !mounted) console.warn("cgroup v1 test skipped: this kernel refuses a named cgroup v1 hierarchy");

describe.runIf(mounted)("kernel: a container in cgroup v1 hierarchies only", () => {
  const id = randomBytes(32).toString("hex");
  const cgroup = join(hierarchy, "docker", id);
  let daemon: Daemon | undefined;

  let made = false;
  afterAll(async () => {
    if (daemon !== undefined) await daemon.stop();
    if (!made) {
      rmdirSync(hierarchy);
      return;
    }
    for (const dir of [cgroup, join(hierarchy, "docker")]) {
      try {
        rmdirSync(dir);
      } catch {
        // not made, or still holds a process that outlived its test: umount says so below
      }
    }
    const umount = spawnSync("umount", [hierarchy], { encoding: "utf8" });
    expect(umount.status, umount.stderr).toBe(0);
    rmdirSync(hierarchy);
  });

  it("is named from the v1 line of the shell's /proc/<pid>/cgroup; a shell of the same unified cgroup is the host's", async () => {
    const mounting = mount();
    expect(mounting.status, mounting.stderr).toBe(0);
    made = true;
    mkdirSync(cgroup, { recursive: true });
    daemon = startDaemon(["--stats-interval", "0"]);
    await daemon.ready;
    type Finding = { rule: { id: string }; destination?: { port: number }; process: { pid: number };
      container?: { id: string; runtime: string }; sockeye: { cgroup_id: number } };
    const findingsFor = (port: number) => daemon!.findings().map((f) => f.finding as Finding).filter((f) => f.destination?.port === port);
    // The shell moves itself into the v1 cgroup, then execs the reverse shell on its pid.
    const { port, onHost, inContainer } = await hostAndContainerShells(
      (shell) => run("bash", ["-c", `echo $$ > ${cgroup}/cgroup.procs && exec ${shell}`]), findingsFor);
    expect(inContainer.status, inContainer.stderr).toBe(0);
    const findings = findingsFor(port);
    expect(findings.map((f) => f.rule.id)).toEqual(["TRC-101", "TRC-101"]);
    const host = findings.find((f) => f.process.pid === onHost.pid)!;
    const inside = findings.find((f) => f.process.pid === inContainer.pid)!;
    // One unified cgroup for both: the cgroup id alone cannot tell them apart.
    expect(inside.sockeye.cgroup_id).toBe(host.sockeye.cgroup_id);
    expect(host.container).toBeUndefined();
    expect(inside.container).toEqual({ id, runtime: "docker" });
    expect(await daemon.stop()).toBe(0);
    daemon = undefined;
  }, 120_000);
});
