/**
 * The folders above a file or folder sockeye writes to as root (the spool, the findings file,
 * the capture). Whoever can write to one of them can swap what follows for a folder or a
 * link of their own, and a later open, rename or truncate by path then lands where they
 * chose. So every folder from `/` down is checked: no symbolic link, owned by root or the
 * daemon's user, and not writable by group or others, unless it has the sticky bit (as
 * /tmp): there only an entry's owner may rename or remove it.
 */
import { lstatSync, type Stats } from "node:fs";
import { dirname, parse, resolve, sep } from "node:path";

/** The daemon's own uid: what it creates is owned by it. */
export function daemonUid(): number {
  return process.geteuid?.() ?? 0;
}

const STICKY = 0o1000;

export interface UntrustedFolder {
  folder: string;
  /** "is ...; what to do". */
  problem: string;
}

/**
 * The first folder above `path` that cannot be trusted, and why; undefined when every one
 * can. A folder that does not exist ends the check: the open or mkdir that follows fails on
 * it with its own error.
 */
export function untrustedParent(path: string): UntrustedFolder | undefined {
  const absolute = resolve(path);
  const { root } = parse(absolute);
  const parents: string[] = [];
  for (let folder = dirname(absolute); ; folder = dirname(folder)) {
    parents.unshift(folder);
    if (folder === root) break;
  }
  const uid = daemonUid();
  for (const folder of parents) {
    let stats: Stats;
    try {
      stats = lstatSync(folder);
    } catch {
      return undefined;
    }
    const problem = folderProblem(stats, uid);
    if (problem !== undefined) return { folder: folder === root ? sep : folder, problem };
  }
  return undefined;
}

function folderProblem(stats: Stats, uid: number): string | undefined {
  if (stats.isSymbolicLink()) return "is a symbolic link; give the real path";
  if (!stats.isDirectory()) return undefined;
  if (stats.uid !== 0 && stats.uid !== uid) return `is owned by uid ${stats.uid}, not by root or the daemon's user`;
  if ((stats.mode & 0o022) !== 0 && (stats.mode & STICKY) === 0) {
    return `is group- or world-writable (mode ${(stats.mode & 0o777).toString(8)}); give a path whose folders only root or the daemon's user can write`;
  }
  return undefined;
}
