/**
 * What a process holds, as endpoint identities the relay graph can join: a pipe's inode, a
 * FIFO's dev:inode, a socket's inode, a pty's index (master and slave apart). Two sources: the
 * exec-time record of fds 0-2 (every process, free), and the host's view of its open files (any
 * fd, looked at only for the few processes around a candidate shell, never per read or write).
 */
import type { Access, HostView, OpenObject } from "../../host/host-view.js";
import type { StdioFd } from "../../sensor/events.js";

/** `pipe:<ino>`, `fifo:<major>:<minor>:<ino>`, `sock:<ino>`, `ptm:<index>` (pty master), `pts:<index>` (pty slave). */
export type EndpointKey = string;
export type { Access };

export interface Holding {
  fd: number;
  key: EndpointKey;
  access: Access;
}

/** What a process holds now; `incomplete` when it holds more fds than one look reads. */
export interface HeldNow {
  holdings: Holding[];
  incomplete: boolean;
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

/** What the process `pid` started at `startNs` holds now; undefined when it is gone (or is another one by now). */
export function holdingsNow(host: HostView, pid: number, startNs: number): HeldNow | undefined {
  const look = host.openFiles(pid, startNs);
  if (look.status === "gone") return undefined;
  return { holdings: look.files.map((f) => ({ fd: f.fd, key: objectKey(f.object), access: f.access })), incomplete: look.status === "incomplete" };
}

function objectKey(object: OpenObject): EndpointKey {
  switch (object.kind) {
    case "pipe":
      return pipeKey(object.ino);
    case "socket":
      return socketKey(object.ino);
    case "fifo":
      return fifoKey(object.major, object.minor, object.ino);
    case "pty_slave":
      return ptySlaveKey(object.index);
    case "pty_master":
      return ptyMasterKey(object.index);
  }
}
