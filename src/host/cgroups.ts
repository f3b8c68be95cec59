/**
 * A cgroup id (what bpf_get_current_cgroup_id gives every event: the inode number of the
 * process's folder in the cgroup v2 hierarchy) to that folder's path. The kernel offers no
 * lookup by id to userspace without a file handle, so the v2 hierarchy is walked and its
 * folders' inodes remembered; an id not found starts one more walk, at most once a second,
 * and a walk stops at a bounded number of folders (a host with more is a host that makes
 * cgroups faster than anyone should: the rest stay unresolved, never guessed).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

export const MAX_CGROUPS_WALKED = 65_536;
const REWALK_INTERVAL_MS = 1_000;

/** Where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup on v2 hosts, .../unified on hybrid ones. */
export function cgroup2Mount(mounts = readFileSync("/proc/self/mounts", "utf8")): string | undefined {
  for (const line of mounts.split("\n")) {
    const [, mountPoint, fsType] = line.split(" ");
    if (fsType === "cgroup2" && mountPoint !== undefined) return mountPoint;
  }
  return undefined;
}

export class CgroupPaths {
  private readonly byId = new Map<number, string>();
  private lastWalkMs = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly root: string | undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /** The path of cgroup `id` relative to the hierarchy's root ("/system.slice/x.service"). */
  pathOf(id: number): string | undefined {
    if (this.root === undefined || id === 0) return undefined;
    const known = this.byId.get(id);
    if (known !== undefined) return known;
    if (this.now() - this.lastWalkMs < REWALK_INTERVAL_MS) return undefined;
    this.walk();
    return this.byId.get(id);
  }

  private walk(): void {
    this.lastWalkMs = this.now();
    this.byId.clear();
    const root = this.root!;
    const queue: string[] = [""];
    while (queue.length > 0 && this.byId.size < MAX_CGROUPS_WALKED) {
      const relative = queue.shift()!;
      const absolute = join(root, relative);
      try {
        this.byId.set(statSync(absolute).ino, relative === "" ? "/" : relative);
        for (const entry of readdirSync(absolute, { withFileTypes: true })) {
          if (entry.isDirectory()) queue.push(`${relative}/${entry.name}`);
        }
      } catch {
        // removed while walking
      }
    }
  }
}
