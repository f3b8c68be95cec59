/**
 * Parsers of /proc's text formats (proc(5)), pure so that tests feed them any text: stat,
 * status id and NSpid lines, environ, fd link targets, fdinfo and namespace links.
 */
import type { Access, OpenObject } from "./host-view.js";

export interface ProcStat {
  comm: string;
  ppid: number;
  pgid: number;
  sid: number;
  ttyNr: number;
  /** Field 22, starttime: clock ticks (USER_HZ) since boot. */
  startTicks: number;
}

/** "pid (comm) state ppid ... starttime(22nd) ..."; comm may hold ") "; undefined when malformed. */
export function parseStat(text: string): ProcStat | undefined {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) return undefined;
  const rest = text.slice(close + 2).trim().split(/\s+/);
  // rest[0] is field 3 (state), so field N is rest[N - 3].
  const ppid = Number(rest[1]);
  const pgid = Number(rest[2]);
  const sid = Number(rest[3]);
  const ttyNr = Number(rest[4]);
  const startTicks = Number(rest[19]);
  if (![ppid, pgid, sid, ttyNr, startTicks].every(Number.isFinite)) return undefined;
  return { comm: text.slice(open + 1, close), ppid, pgid, sid, ttyNr, startTicks };
}

const ID_LINES = {
  Uid: /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m,
  Gid: /^Gid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m,
};

/** status "Uid:"/"Gid:" line: real, effective, saved, filesystem ids. */
export function idLine(status: string, key: "Uid" | "Gid"): [number, number, number, number] | undefined {
  const match = ID_LINES[key].exec(status);
  if (match === null) return undefined;
  return [Number(match[1]), Number(match[2]), Number(match[3]), Number(match[4])];
}

/**
 * The `NAME=value` entries of environ's bytes whose name is among `names`, in the process's
 * order; the rest is never decoded. One native search per name: an environment is kilobytes,
 * the names a rule set compares are a handful, and splitting it all to strings cost more than
 * the read on every exec.
 */
export function environEntriesOfBytes(environ: Buffer, names: ReadonlySet<string>): string[] {
  const found: { at: number; entry: string }[] = [];
  for (const name of names) {
    const key = `${name}=`;
    for (let at = environ.indexOf(key); at >= 0; at = environ.indexOf(key, at + 1)) {
      if (at > 0 && environ[at - 1] !== 0) continue; // the name inside another entry's value or name
      const end = environ.indexOf(0, at);
      found.push({ at, entry: environ.toString("utf8", at, end < 0 ? environ.length : end) });
    }
  }
  return found.sort((a, b) => a.at - b.at).map((f) => f.entry);
}

/** The `NAME=value` entries of environ whose name is among `names`; the rest is never kept. */
export function environEntries(environ: string, names: ReadonlySet<string>): string[] {
  const wanted: string[] = [];
  for (const entry of environ.split("\0")) {
    const eq = entry.indexOf("=");
    if (eq > 0 && names.has(entry.slice(0, eq))) wanted.push(entry);
  }
  return wanted;
}

/**
 * What an fd's link target names without another read: `pipe:[ino]`, `socket:[ino]`, a pty
 * slave `/dev/pts/N`, the pty multiplexer (its index is in fdinfo), or a path (maybe a FIFO).
 */
export type FdTarget = { object: OpenObject } | { ptmx: true } | { path: string } | { other: true };

export function parseFdTarget(target: string): FdTarget {
  const anon = /^(pipe|socket):\[(\d+)\]$/.exec(target);
  if (anon !== null) return { object: { kind: anon[1] === "socket" ? "socket" : "pipe", ino: Number(anon[2]) } };
  const pts = /^\/dev\/pts\/(\d+)$/.exec(target);
  if (pts !== null) return { object: { kind: "pty_slave", index: Number(pts[1]) } };
  if (target === "/dev/ptmx" || target === "/dev/pts/ptmx") return { ptmx: true };
  return target.startsWith("/") ? { path: target } : { other: true };
}

const O_ACCMODE = 3;

/** fdinfo's `flags:` (octal) as the access the fd was opened with. */
export function fdinfoAccess(fdinfo: string): Access | undefined {
  const flags = /^flags:\s*([0-7]+)$/m.exec(fdinfo);
  if (flags === null) return undefined;
  const mode = parseInt(flags[1]!, 8) & O_ACCMODE;
  return mode === 0 ? "read" : mode === 1 ? "write" : "both";
}

/** fdinfo's `tty-index:` of a pty master: the index of its slave. */
export function fdinfoTtyIndex(fdinfo: string): number | undefined {
  const index = /^tty-index:\s*(\d+)$/m.exec(fdinfo);
  return index !== null ? Number(index[1]) : undefined;
}

/**
 * A namespace link's target (`/proc/<pid>/ns/net` → `net:[4026531840]`) as the namespace's
 * inode number, the number the kernel's task context records; undefined for another kind or
 * a malformed target.
 */
export function namespaceInode(target: string, kind: "pid" | "mnt" | "net"): number | undefined {
  const match = /^([a-z_]+):\[(\d+)\]$/.exec(target);
  if (match === null || match[1] !== kind) return undefined;
  const inode = Number(match[2]);
  return Number.isSafeInteger(inode) && inode > 0 ? inode : undefined;
}

/**
 * status's `NSpid:` line (the pid in each pid namespace it is in, outermost first) as the pid
 * inside its innermost one, the kernel's ns_pid; undefined before Linux 4.1, which has no such
 * line, or when the line is malformed.
 */
export function innermostNsPid(status: string): number | undefined {
  const match = /^NSpid:[ \t]*(\d+(?:[ \t]+\d+)*)[ \t]*$/m.exec(status);
  if (match === null) return undefined;
  const pid = Number(match[1]!.split(/[ \t]+/).at(-1));
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}
