/**
 * A cgroup id (what bpf_get_current_cgroup_id gives every event: the inode number of the
 * process's folder in the cgroup v2 hierarchy) to that folder's path. The kernel offers no
 * lookup by id to userspace without a file handle, so the v2 hierarchy is walked and its
 * folders' inodes remembered.
 *
 * Why the walk policy is what it is: a finding may be made after its process exited (a shell
 * that answered one command), when /proc/<pid>/cgroup is gone and only the id the kernel
 * recorded is left. Kernfs gives ids in increasing order, so an id above every id the last
 * walk saw is a cgroup made since: walked for at once (at most every 100 ms: a local user with a
 * delegated subtree can make cgroups fast), while an id at or below it (a folder already gone,
 * or one the bound left out) waits a second. Paths of folders removed since stay remembered,
 * up to the bound, so a container removed right after its shell exited is still named. A walk
 * stops at a bounded number of folders (a host with more is a host that makes cgroups faster
 * than anyone should: the rest stay unresolved, never guessed).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

export const MAX_CGROUPS_WALKED = 65_536;
/** Between walks for an id no walk has seen yet (a cgroup made since the last walk). */
export const NEW_ID_WALK_INTERVAL_MS = 100;
/** Between walks for any other unknown id. */
export const REWALK_INTERVAL_MS = 1_000;

/** Where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup on v2 hosts, .../unified on hybrid ones. */
export function cgroup2Mount(mounts = readFileSync("/proc/self/mounts", "utf8")): string | undefined {
  for (const line of mounts.split("\n")) {
    const [, mountPoint, fsType] = line.split(" ");
    if (fsType === "cgroup2" && mountPoint !== undefined) return mountPoint;
  }
  return undefined;
}

export class CgroupPaths {
  /** id → path, oldest first: folders removed since their walk stay until the bound trims them. */
  private readonly byId = new Map<number, string>();
  private lastWalkMs = Number.NEGATIVE_INFINITY;
  /** The highest id the last walk saw: ids above it were made since. */
  private highestWalked = 0;
  private walks = 0;

  constructor(
    private readonly root: string | undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /** How many times the hierarchy was walked (tests, metrics). */
  get walkCount(): number {
    return this.walks;
  }

  /** The path of cgroup `id` if already known, without walking. */
  known(id: number): string | undefined {
    return id === 0 ? undefined : this.byId.get(id);
  }

  /** The path of cgroup `id` relative to the hierarchy's root ("/system.slice/x.service"). */
  pathOf(id: number): string | undefined {
    if (this.root === undefined || id === 0) return undefined;
    const known = this.byId.get(id);
    if (known !== undefined) return known;
    const since = this.now() - this.lastWalkMs;
    if (since < (id > this.highestWalked ? NEW_ID_WALK_INTERVAL_MS : REWALK_INTERVAL_MS)) return undefined;
    this.walk();
    return this.byId.get(id);
  }

  private walk(): void {
    this.lastWalkMs = this.now();
    this.walks++;
    const root = this.root!;
    const queue: string[] = [""];
    let seen = 0;
    while (queue.length > 0 && seen < MAX_CGROUPS_WALKED) {
      const relative = queue.shift()!;
      const absolute = join(root, relative);
      try {
        const id = statSync(absolute).ino;
        seen++;
        // Re-inserted, so the order stays oldest-seen first for trimming.
        this.byId.delete(id);
        this.byId.set(id, relative === "" ? "/" : relative);
        if (id > this.highestWalked) this.highestWalked = id;
        for (const entry of readdirSync(absolute, { withFileTypes: true })) {
          if (entry.isDirectory()) queue.push(`${relative}/${entry.name}`);
        }
      } catch {
        // removed while walking
      }
    }
    for (const id of this.byId.keys()) {
      if (this.byId.size <= MAX_CGROUPS_WALKED) break;
      this.byId.delete(id);
    }
  }
}
