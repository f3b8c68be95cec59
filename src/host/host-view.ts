/**
 * The host view: every fact about this host that the process table and the rules read from
 * /proc or the filesystem, behind one interface. Rules get it in their context, the process
 * table by its constructor; a live daemon gives ProcHostView (proc-host.ts), a replay or a
 * test OFFLINE_HOST or a fake of its own.
 *
 * Every answer is plain data (no handles, no callbacks), so the same reads can run in a
 * worker and their answers cross a thread boundary unchanged. A look a local user can make
 * expensive (a process holding thousands of fds, a huge executable) has a budget: past it the
 * answer says `incomplete` with the reason, never a silent "nothing there", and the caller
 * counts it.
 *
 * Cache policy, in one place (ProcHostView): facts that cannot change for an identity are kept
 * by that identity (a file's digest by dev, inode, size and mtime; the boot id once; user
 * names until their file changes); facts that change while a process lives (its fds, ids,
 * working directory, the TCP tables, its network namespace) are read at every look.
 */
import type { ExistingTcpSocket } from "./tcp-table.js";
import type { ContainerIdentity } from "./container.js";
import type { ContainerMetadata } from "./container-metadata.js";

/**
 * USER_HZ, the unit of /proc/<pid>/stat's start time. It is 100 on every Linux ABI sockeye
 * targets, and node cannot call sysconf(_SC_CLK_TCK): a constant, not a probe.
 */
export const USER_HZ = 100;
/** One USER_HZ tick in ns: the precision of a start time read from /proc. */
export const START_TICK_NS = 1e9 / USER_HZ;

/**
 * Why a look stopped short: it would have read more than its budget allows, or it did not
 * finish within the time the caller may wait for it (it runs on elsewhere; worker-host.ts).
 */
export type IncompleteReason = "fd_budget" | "byte_budget" | "time_budget";

/** A process as /proc shows it, for seeding the process table. */
export interface ProcessRecord {
  pid: number;
  ppid: number;
  /** ns since boot, to START_TICK_NS precision. */
  startNs: number;
  comm: string;
  /** /proc/<pid>/exe without " (deleted)"; "" for kernel threads and unreadable links. */
  executable: string;
  args: string[];
  uid: number;
  /** Real group id; undefined when status has no Gid line. */
  gid?: number;
  /**
   * As an event's TaskContext names them, for the same process: the pid inside its innermost
   * pid namespace (status's NSpid) and the inodes of /proc/<pid>/ns/{pid,mnt,net}; each
   * undefined when it could not be read.
   */
  nsPid?: number;
  pidNs?: number;
  mntNs?: number;
  netNs?: number;
}

/**
 * Facts about a live process that the kernel events do not carry, read when a rule asks
 * (within milliseconds of the event): effective ids, session and process group, controlling
 * terminal.
 */
export interface LiveProcessFacts {
  euid: number;
  egid: number;
  /** Session id: the pid of the session leader. */
  sid: number;
  /** Process group id: the pid of the group leader. */
  pgid: number;
  /** The controlling terminal's device number (proc(5) tty_nr); 0 when there is none. */
  ttyNr: number;
}

/** What one open fd refers to, as far as a relay can join on it; other files are left out. */
export type OpenObject =
  | { kind: "pipe"; ino: number }
  | { kind: "socket"; ino: number }
  | { kind: "fifo"; major: number; minor: number; ino: number }
  | { kind: "pty_slave"; index: number }
  | { kind: "pty_master"; index: number };

export type Access = "read" | "write" | "both";

export interface OpenFile {
  fd: number;
  object: OpenObject;
  access: Access;
}

/**
 * A process's open files. `gone`: the pid has exited or now belongs to another process.
 * `incomplete`: the process holds more fds than one look may read; `files` has those read.
 */
export type OpenFilesLook =
  | { status: "complete"; files: OpenFile[] }
  | { status: "incomplete"; files: OpenFile[]; reason: IncompleteReason }
  | { status: "gone" };

/** A file's SHA-256. `incomplete`: larger than the bytes one look may hash, or not hashed in time. */
export type DigestLook =
  | { status: "complete"; sha256: string }
  | { status: "incomplete"; reason: IncompleteReason }
  | { status: "unreadable" };

/**
 * A file's GNU build-id, read from its first bytes. `none`: not an ELF file, or one without
 * the note; `incomplete`: the note lies past the bytes one look may read.
 */
export type BuildIdLook =
  | { status: "found"; buildId: string }
  | { status: "none" }
  | { status: "incomplete"; reason: IncompleteReason }
  | { status: "unreadable" };

export interface HostView {
  /** The kernel's boot id without dashes, read once; "" where unknown (a replay). */
  bootId(): string;
  /**
   * The host's id for Elastic's `host.id`: the machine id (/etc/machine-id, as Elastic Agent
   * reports it), else the boot id (some containers: stable until reboot); "" where unknown.
   */
  hostId(): string;
  /** The pids of every process now. */
  processIds(): number[];
  /** One process as /proc shows it; undefined when it vanished or cannot be read. */
  processRecord(pid: number): ProcessRecord | undefined;
  /**
   * The next three are about the process `pid` started at `startNs` only: undefined when it is
   * gone or the pid belongs to another process by now, so a reused pid never lends its facts.
   */
  liveFacts(pid: number, startNs: number): LiveProcessFacts | undefined;
  workingDirectory(pid: number, startNs: number): string | undefined;
  /** `NAME=value` of the variables among `names` in the exec-time environment, in its order. */
  environment(pid: number, startNs: number, names: ReadonlySet<string>): string[] | undefined;
  openFiles(pid: number, startNs: number): OpenFilesLook;
  /**
   * The TCP sockets now (listeners and TIME_WAIT left out) of the sensor's own network
   * namespace, or with `pid`, of that process's (/proc/<pid>/net/tcp{,6}: a container's or any
   * netns's; [] when the process is gone). Each call walks the kernel's whole TCP hash table
   * whichever namespace it shows (~11 ms on a 24 GiB host): callers read a namespace once per
   * evaluation at most, keyed by netNamespace().
   */
  tcpSockets(pid?: number): ExistingTcpSocket[];
  /**
   * The inode of the network namespace `pid` is in now (/proc/<pid>/ns/net, as the kernel's
   * task context names it), or the sensor's own without `pid`; undefined when it cannot be
   * read. Optional, so a host view written before it still fits.
   */
  netNamespace?(pid?: number): number | undefined;
  /**
   * The inodes of the unix sockets of the sensor's network namespace, or with `pid`, of that
   * process's (/proc/<pid>/net/unix; empty when the process is gone). A list of the namespace's
   * unix sockets, no hash table walk: ~0.1 ms where a TCP table read takes ~4–11 ms, so a
   * socket a relay chain reaches is told unix before any TCP table is read for it. Optional.
   */
  unixSocketInodes?(pid?: number): Set<number>;
  /** `path` with every symlink resolved, when it names a regular file. */
  regularFile(path: string): string | undefined;
  fileDigest(path: string): DigestLook;
  buildId(path: string): BuildIdLook;
  /**
   * A path the daemon can read that reaches the file `path` names as the process `pid` sees it
   * (its working directory, root and mount namespace), or its own program when `path` is
   * undefined (/proc/<pid>/exe: memfd, deleted and renamed files included). No look is made:
   * a caller that acts on what it read there confirms the pid is still its process after the
   * read (liveFacts), as a pid may be reused meanwhile.
   */
  pathSeenBy(pid: number, path?: string): string;
  userName(uid: number): string | undefined;
  groupName(gid: number): string | undefined;
  /**
   * The cgroup path of a process: from its cgroup id (events carry it; resolvable while the
   * cgroup exists), else from /proc/<pid>/cgroup while the process lives.
   */
  cgroupPath(cgroupId: number, pid: number): string | undefined;
  /**
   * The path of the container of the process `pid` started at `startNs` in the cgroup v1
   * hierarchies of /proc/<pid>/cgroup, for a container a hybrid host's runtime put in v1
   * hierarchies only (its unified-hierarchy cgroup, which the cgroup id names, is a host one);
   * undefined when no v1 hierarchy names one, the host has none, or the process is gone.
   * Optional, so a host view written before it still fits.
   */
  cgroupV1ContainerPath?(pid: number, startNs: number): string | undefined;
  /**
   * What a container's runtime wrote down about it (name, image, pod), from the runtime's state
   * files on the host, read through the root of the first of `viaPids` whose root can be read
   * (host processes: the caller never passes one inside the container). Optional, so a host
   * view written before it still fits.
   */
  containerMetadata?(container: ContainerIdentity, viaPids: readonly number[]): ContainerMetadata | undefined;
}

/** A host that shows nothing: a replay (its pids are another host's) or a test. */
export const OFFLINE_HOST: HostView = Object.freeze({
  bootId: () => "",
  hostId: () => "",
  processIds: () => [],
  processRecord: () => undefined,
  liveFacts: () => undefined,
  workingDirectory: () => undefined,
  environment: () => undefined,
  openFiles: () => ({ status: "gone" }) as const,
  tcpSockets: () => [],
  netNamespace: () => undefined,
  unixSocketInodes: () => new Set<number>(),
  regularFile: () => undefined,
  fileDigest: () => ({ status: "unreadable" }) as const,
  buildId: () => ({ status: "unreadable" }) as const,
  pathSeenBy: () => "",
  userName: () => undefined,
  groupName: () => undefined,
  cgroupPath: () => undefined,
});

export type { ExistingTcpSocket };
