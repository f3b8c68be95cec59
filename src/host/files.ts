/**
 * The files the rule layer needs besides /proc: folders of rule files and sockeye's own
 * package root (its shipped rules). Here so that rules/ does no I/O of its own.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { assertInternal } from "../errors.js";

export function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** The names in a folder; throws the fs error (its code says why) when it cannot be listed. */
export function listFolder(path: string): string[] {
  return readdirSync(path);
}

/** The nearest folder upwards from this module holding the package.json of `name`. */
export function packageRoot(name: string): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, "utf8")) as { name?: unknown }).name === name) return dir;
      } catch {
        // Not ours; keep looking.
      }
    }
    const parent = dirname(dir);
    assertInternal(parent !== dir, `cannot find the package root (package.json of ${name})`);
    dir = parent;
  }
}
