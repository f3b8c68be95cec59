import { afterEach, describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, rmSync, rmdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CgroupPaths, NEW_ID_WALK_INTERVAL_MS, REWALK_INTERVAL_MS, cgroup2Mount } from "../../../src/host/cgroups.js";

// A folder tree stands in for the cgroup v2 hierarchy: ids are inode numbers in both.
const roots: string[] = [];
function tree(...folders: string[]): string {
  const root = mkdtempSync(join(tmpdir(), "sockeye-cgroups-"));
  roots.push(root);
  for (const f of folders) mkdirSync(join(root, f), { recursive: true });
  return root;
}
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

describe("CgroupPaths", () => {
  it("resolves ids by walking once, then from memory", () => {
    const root = tree("system.slice/ssh.service", "libpod_parent/libpod-abc");
    let now = 0;
    const paths = new CgroupPaths(root, () => now);
    const id = statSync(join(root, "libpod_parent/libpod-abc")).ino;
    expect(paths.known(id)).toBeUndefined();
    expect(paths.pathOf(id)).toBe("/libpod_parent/libpod-abc");
    expect(paths.pathOf(statSync(root).ino)).toBe("/");
    expect(paths.pathOf(statSync(join(root, "system.slice/ssh.service")).ino)).toBe("/system.slice/ssh.service");
    expect(paths.walkCount).toBe(1);
    expect(paths.known(id)).toBe("/libpod_parent/libpod-abc");
    now += 10;
    expect(paths.pathOf(0)).toBeUndefined();
    expect(paths.walkCount).toBe(1);
  });

  it("keeps naming a folder removed after it was walked (a container gone with its shell)", () => {
    const root = tree("libpod_parent/libpod-gone");
    const paths = new CgroupPaths(root, () => 0);
    const id = statSync(join(root, "libpod_parent/libpod-gone")).ino;
    expect(paths.pathOf(id)).toBe("/libpod_parent/libpod-gone");
    rmdirSync(join(root, "libpod_parent/libpod-gone"));
    expect(paths.pathOf(id)).toBe("/libpod_parent/libpod-gone");
  });

  it("walks again soon for an id made since the last walk, and waits a second for any other", () => {
    const root = tree("a");
    let now = 0;
    const paths = new CgroupPaths(root, () => now);
    const highest = Math.max(statSync(root).ino, statSync(join(root, "a")).ino);
    expect(paths.pathOf(statSync(join(root, "a")).ino)).toBe("/a");
    mkdirSync(join(root, "b"));
    const id = statSync(join(root, "b")).ino;
    now = NEW_ID_WALK_INTERVAL_MS - 1;
    expect(paths.pathOf(id)).toBeUndefined();
    now = NEW_ID_WALK_INTERVAL_MS;
    // Inode numbers grow on cgroupfs (kernfs); a temp folder's may not: assert what this one is.
    if (id > highest) {
      expect(paths.pathOf(id)).toBe("/b");
      expect(paths.walkCount).toBe(2);
    } else {
      expect(paths.pathOf(id)).toBeUndefined();
      now = REWALK_INTERVAL_MS;
      expect(paths.pathOf(id)).toBe("/b");
    }
    // An id no folder has: one walk per second at most.
    const walks = paths.walkCount;
    now += 1;
    expect(paths.pathOf(1)).toBeUndefined();
    expect(paths.walkCount).toBe(walks);
  });

  it("answers nothing without a v2 hierarchy", () => {
    expect(new CgroupPaths(undefined).pathOf(5)).toBeUndefined();
    expect(cgroup2Mount("cgroup /sys/fs/cgroup/memory cgroup rw 0 0\n")).toBeUndefined();
    expect(cgroup2Mount("cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n")).toBe("/sys/fs/cgroup/unified");
  });
});
