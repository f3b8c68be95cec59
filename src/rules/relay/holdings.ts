/**
 * What a process holds, as endpoint identities the relay graph can join: a pipe's inode, a
 * FIFO's dev:inode, a socket's inode, a pty's index (master and slave apart). Two sources: the
 * exec-time record of fds 0-2 (every process, free), and /proc/<pid>/fd with fdinfo (any fd,
 * read only for the few processes around a candidate shell, never per read or write).
 */
import { readFileSync, readdirSync, readlinkSync, statSync } from "node:fs";
import type { StdioFd } from "../../sensor/events.js";
import { readTcpSockets, type ExistingTcpSocket } from "./tcp-table.js";

/** `pipe:<ino>`, `fifo:<major>:<minor>:<ino>`, `sock:<ino>`, `ptm:<index>` (pty master), `pts:<index>` (pty slave). */
export type EndpointKey = string;
export type Access = "read" | "write" | "both";

export interface Holding {
  fd: number;
  key: EndpointKey;
  access: Access;
}

/** Who holds what right now. `undefined`: the process is gone (or is another one by now). */
export interface HoldingsSource {
  holdings(pid: number, startNs: number): Holding[] | undefined;
  /**
   * The TCP sockets that exist now and whether each was connected or accepted, asked once as
   * observation begins (connects from before then were never seen). Absent: none are known.
   */
  existingTcpSockets?(): ExistingTcpSocket[];
}

export const pipeKey = (ino: number): EndpointKey => `pipe:${ino}`;
export const socketKey = (ino: number): EndpointKey => `sock:${ino}`;
export const ptyMasterKey = (index: number): EndpointKey => `ptm:${index}`;
export const ptySlaveKey = (index: number): EndpointKey => `pts:${index}`;
export const fifoKey = (major: number, minor: number, ino: number): EndpointKey => `fifo:${major}:${minor}:${ino}`;

/**
 * The key of one exec-time stdio fd, or undefined for what cannot carry a relayed stream
 * (closed, files, char devices, inet sockets: those are TRC-101's). A terminal's record has no
 * device number, so whether it is a pty slave is left to /proc (`tty` keys never match).
 * fd 0 is taken as read, 1 and 2 as write, as programs use them.
 */
export function stdioHolding(fd: number, s: StdioFd): Holding | undefined {
  const access: Access = fd === 0 ? "read" : "write";
  switch (s.kind) {
    case "pipe":
      return { fd, key: pipeKey(s.ino), access };
    case "fifo":
      // The kernel's dev_t: major in the top 12 bits, minor in the low 20.
      return { fd, key: fifoKey(s.dev >>> 20, s.dev & 0xfffff, s.ino), access };
    case "unix":
      return { fd, key: socketKey(s.ino), access: "both" };
    case "tty":
      return { fd, key: `tty:${s.ttyIndex}`, access: "both" };
    case "pty_master":
      return { fd, key: ptyMasterKey(s.ttyIndex), access: "both" };
    default:
      return undefined;
  }
}

const O_ACCMODE = 3;

/**
 * Reads /proc/<pid>/fd and fdinfo. The pid must still be the process the events named: its
 * start time in /proc/<pid>/stat (clock ticks since boot) must match `startNs`.
 */
export class ProcHoldings implements HoldingsSource {
  constructor(
    private readonly procRoot = "/proc",
    private readonly clockTicksPerSecond = 100,
  ) {}

  existingTcpSockets(): ExistingTcpSocket[] {
    return readTcpSockets(this.procRoot);
  }

  holdings(pid: number, startNs: number): Holding[] | undefined {
    if (!this.sameProcess(pid, startNs)) return undefined;
    let fds: string[];
    try {
      fds = readdirSync(`${this.procRoot}/${pid}/fd`);
    } catch {
      return undefined;
    }
    const out: Holding[] = [];
    for (const name of fds) {
      const fd = Number(name);
      const holding = this.holding(pid, fd);
      if (holding !== undefined) out.push(holding);
    }
    return out;
  }

  private holding(pid: number, fd: number): Holding | undefined {
    const path = `${this.procRoot}/${pid}/fd/${fd}`;
    let target: string;
    try {
      target = readlinkSync(path);
    } catch {
      return undefined; // closed meanwhile
    }
    const anon = /^(pipe|socket):\[(\d+)\]$/.exec(target);
    if (anon !== null) {
      const ino = Number(anon[2]);
      if (anon[1] === "socket") return { fd, key: socketKey(ino), access: "both" };
      return { fd, key: pipeKey(ino), access: this.access(pid, fd) ?? "both" };
    }
    const pts = /^\/dev\/pts\/(\d+)$/.exec(target);
    if (pts !== null) return { fd, key: ptySlaveKey(Number(pts[1])), access: "both" };
    if (target === "/dev/ptmx" || target === "/dev/pts/ptmx") {
      const index = /^tty-index:\s*(\d+)$/m.exec(this.fdinfo(pid, fd) ?? "");
      return index !== null ? { fd, key: ptyMasterKey(Number(index[1])), access: "both" } : undefined;
    }
    if (!target.startsWith("/")) return undefined;
    try {
      const st = statSync(path);
      if (!st.isFIFO()) return undefined;
      // Node's st.dev is the userspace encoding of dev_t.
      const major = (st.dev >>> 8) & 0xfff;
      const minor = (st.dev & 0xff) | ((st.dev >>> 12) & 0xfff00);
      return { fd, key: fifoKey(major, minor, st.ino), access: this.access(pid, fd) ?? "both" };
    } catch {
      return undefined;
    }
  }

  private fdinfo(pid: number, fd: number): string | undefined {
    try {
      return readFileSync(`${this.procRoot}/${pid}/fdinfo/${fd}`, "utf8");
    } catch {
      return undefined;
    }
  }

  private access(pid: number, fd: number): Access | undefined {
    const flags = /^flags:\s*([0-7]+)$/m.exec(this.fdinfo(pid, fd) ?? "");
    if (flags === null) return undefined;
    const mode = parseInt(flags[1]!, 8) & O_ACCMODE;
    return mode === 0 ? "read" : mode === 1 ? "write" : "both";
  }

  private sameProcess(pid: number, startNs: number): boolean {
    let stat: string;
    try {
      stat = readFileSync(`${this.procRoot}/${pid}/stat`, "utf8");
    } catch {
      return false;
    }
    // Fields after the parenthesised comm (which may itself hold spaces and parentheses).
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[19]);
    const expected = (startNs / 1e9) * this.clockTicksPerSecond;
    return Number.isFinite(ticks) && Math.abs(ticks - expected) <= 1;
  }
}
