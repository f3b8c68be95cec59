/**
 * The live host view: /proc and the filesystem of the host the daemon runs on. Every read the
 * process table and the rules make goes through here, synchronously; each method is a pure
 * function of the files it reads and its arguments, so a worker can run this same class and
 * answer the main thread with the plain data it returns.
 */
import { CgroupPaths, cgroup2Mount } from "./cgroups.js";
import { cgroupPathOfProcFile, listsV1Hierarchies, v1ContainerPathOfProcFile, type ContainerIdentity } from "./container.js";
import { readContainerMetadata, type ContainerMetadata } from "./container-metadata.js";
import { closeSync, existsSync, fstatSync, opendirSync, openSync, readFileSync, readSync, readdirSync, readlinkSync, realpathSync, statSync } from "node:fs";
import { buildIdOfElfHead } from "./elf-build-id.js";
import {
  START_TICK_NS, type BuildIdLook, type DigestLook, type HostView, type LiveProcessFacts, type OpenFile, type OpenFilesLook, type ProcessRecord,
} from "./host-view.js";
import {
  environEntriesOfBytes, fdinfoAccess, fdinfoTtyIndex, idLine, innermostNsPid, namespaceInode, parseFdTarget, parseStat, type ProcStat,
} from "./proc-parse.js";
import { classifyTcpSockets, parseTcpTable, type ExistingTcpSocket } from "./tcp-table.js";
import { NameDatabase } from "./user-names.js";

/** node:crypto (OpenSSL's binding and 16 modules, ~0.6 MB of an idle daemon's RSS) loads with the first digest. */
const createHash = (algorithm: string) => process.getBuiltinModule("node:crypto").createHash(algorithm);

export interface ProcHostOptions {
  /** Where /proc is; tests point this at a fake tree. */
  procRoot?: string;
  /** User and group names of this host (tests give their own files). */
  names?: NameDatabase;
  /**
   * Most fds one openFiles() look reads (a readlink, and an fdinfo or stat for pipes, FIFOs
   * and ptys, each): any user can hold up to RLIMIT_NOFILE fds, and the look runs for every
   * process around a candidate shell.
   */
  maxFdsPerLook?: number;
  /** Largest file fileDigest() hashes: interpreters are a few MB, and a look reads the file whole. */
  maxHashedBytes?: number;
  /** Bytes buildId() reads from the start of a file: the linker puts the note in the first page. */
  maxBuildIdBytes?: number;
}

const DEFAULT_MAX_FDS_PER_LOOK = 1024;
/**
 * Bytes of /proc/<pid>/cmdline one processRecord() reads: argv and the environment are up to
 * 6 MiB each (3/4 of the 8 MiB stack limit, Linux >= 4.13), the caller's choice; the process
 * table keeps 16 KiB of argv per process and flags the rest as cut, so 64 KiB is plenty.
 */
const MAX_CMDLINE_BYTES = 64 * 1024;
const DEFAULT_MAX_HASHED_BYTES = 64 * 1024 * 1024;
const DEFAULT_MAX_BUILD_ID_BYTES = 16 * 1024;
/**
 * Most bytes of /proc/<pid>/environ read: the kernel bounds an exec's arguments and
 * environment together by a quarter of the stack limit, and never above 6 MiB (3/4 of
 * _STK_LIM, fs/exec.c), so this reads any environment whole. Chosen over a 256 KiB bound: a
 * variable put after padding must not hide from the env_vars rules; a padded exec costs ~1 ms
 * (0.46 ms for 1.7 MiB), paid by the attacker's own 6 MiB copy into every exec too.
 */
const MAX_ENVIRON_BYTES = 6 * 1024 * 1024;
/** Digests and build-ids kept by file identity; a new identity past it pushes out the oldest. */
const MAX_DIGESTS = 1024;

export class ProcHostView implements HostView {
  private readonly procRoot: string;
  private readonly names: NameDatabase;
  private readonly maxFdsPerLook: number;
  private readonly maxHashedBytes: number;
  private readonly maxBuildIdBytes: number;
  private bootIdRead: string | undefined;
  private hostIdRead: string | undefined;
  /** dev:ino:size:mtime → what hashing that file gave. */
  private readonly digests = new Map<string, DigestLook>();
  /** dev:ino:size:mtime → what the file's first bytes said of its build-id. */
  private readonly buildIds = new Map<string, BuildIdLook>();
  private cgroups: CgroupPaths | undefined;
  /** Whether the kernel has cgroup v1 hierarchies (a hybrid or v1 host), read once. */
  private v1Hierarchies: boolean | undefined;
  /** Reused by every environ read that fits. */
  private readonly environBuffer = Buffer.allocUnsafe(64 * 1024);
  /** knownGone()'s one process. */
  private readonly lastGone = { pid: -1, startNs: -1 };

  constructor(options: ProcHostOptions = {}) {
    this.procRoot = options.procRoot ?? "/proc";
    this.names = options.names ?? new NameDatabase();
    this.maxFdsPerLook = options.maxFdsPerLook ?? DEFAULT_MAX_FDS_PER_LOOK;
    this.maxHashedBytes = options.maxHashedBytes ?? DEFAULT_MAX_HASHED_BYTES;
    this.maxBuildIdBytes = options.maxBuildIdBytes ?? DEFAULT_MAX_BUILD_ID_BYTES;
  }

  cgroupPath(cgroupId: number, pid: number): string | undefined {
    let mount: string | undefined;
    if (this.cgroups === undefined) {
      try {
        mount = cgroup2Mount(readFileSync(`${this.procRoot}/self/mounts`, "utf8"));
      } catch {
        mount = undefined;
      }
      this.cgroups = new CgroupPaths(mount);
    }
    // Known ids first (no I/O), then the process's own file while it lives, then a walk: the
    // walk is the only answer left for a process that already exited.
    // The id's answer is the same for every process of that cgroup (the table keeps it by id), so
    // a hybrid host's v1-only container, whose unified cgroup is a host one (the root, a shim's
    // service), is not named here but per process (cgroupV1ContainerPath).
    const known = this.cgroups.known(cgroupId);
    if (known !== undefined) return known;
    try {
      const fromProc = cgroupPathOfProcFile(readFileSync(`${this.procRoot}/${pid}/cgroup`, "utf8"));
      if (fromProc !== undefined) return fromProc;
    } catch {
      // exited: only the id is left
    }
    return this.cgroups.pathOf(cgroupId);
  }

  cgroupV1ContainerPath(pid: number, startNs: number): string | undefined {
    // No v1 hierarchy (a v2 host): nothing to read, per finding or ever.
    if (this.v1Hierarchies === undefined) {
      try {
        this.v1Hierarchies = listsV1Hierarchies(readFileSync(`${this.procRoot}/self/cgroup`, "utf8"));
      } catch {
        this.v1Hierarchies = false;
      }
    }
    if (!this.v1Hierarchies || !this.isProcess(pid, startNs)) return undefined;
    try {
      return v1ContainerPathOfProcFile(readFileSync(`${this.procRoot}/${pid}/cgroup`, "utf8"));
    } catch {
      return undefined; // exited
    }
  }

  containerMetadata(container: ContainerIdentity, viaPids: readonly number[]): ContainerMetadata | undefined {
    // Through a host process's root: the host's filesystem, also from the DaemonSet's container
    // (hostPID). A root that cannot be opened (a pid 1 the daemon may not trace) gives way to the next.
    for (const pid of viaPids.slice(0, 8)) {
      const root = `${this.procRoot}/${pid}/root`;
      try {
        statSync(`${root}/`);
      } catch {
        continue;
      }
      return readContainerMetadata(container, root, readBounded);
    }
    return undefined;
  }

  hostId(): string {
    if (this.hostIdRead === undefined) {
      this.hostIdRead = "";
      for (const path of ["/etc/machine-id", "/var/lib/dbus/machine-id"]) {
        try {
          const id = readFileSync(path, "utf8").trim().replace(/-/g, "");
          if (/^[0-9a-f]{32}$/i.test(id)) {
            this.hostIdRead = id;
            break;
          }
        } catch {
          // Try the next place.
        }
      }
      if (this.hostIdRead === "" && /^[0-9a-f]{32}$/i.test(this.bootId())) this.hostIdRead = this.bootId();
    }
    return this.hostIdRead;
  }

  bootId(): string {
    if (this.bootIdRead === undefined) {
      try {
        this.bootIdRead = readFileSync(`${this.procRoot}/sys/kernel/random/boot_id`, "utf8").trim().replace(/-/g, "");
      } catch {
        this.bootIdRead = "";
      }
    }
    return this.bootIdRead;
  }

  processIds(): number[] {
    return readdirSync(this.procRoot).filter((name) => /^\d+$/.test(name)).map(Number);
  }

  processRecord(pid: number): ProcessRecord | undefined {
    const dir = `${this.procRoot}/${pid}`;
    const stat = this.stat(pid);
    if (stat === undefined) return undefined;
    try {
      const status = readFileSync(`${dir}/status`, "utf8");
      const uid = idLine(status, "Uid")?.[0];
      if (uid === undefined) return undefined;
      const gid = idLine(status, "Gid")?.[0];
      const cmdline = readHead(`${dir}/cmdline`, MAX_CMDLINE_BYTES);
      const args = cmdline.text.split("\0");
      // A cut argv ends in the middle of an argument: that one is dropped, not kept half.
      if (args.at(-1) === "" || cmdline.cut) args.pop();
      const nsPid = innermostNsPid(status);
      // Three readlinks, a fixed cost each: the namespaces an event's task context names, so
      // what is said of a process found running matches what its first event will say.
      const pidNs = this.namespaceOf(pid, "pid");
      const mntNs = this.namespaceOf(pid, "mnt");
      const netNs = this.namespaceOf(pid, "net");
      return {
        pid, ppid: stat.ppid, startNs: stat.startTicks * START_TICK_NS, comm: stat.comm, executable: readExecutable(`${dir}/exe`), args, uid,
        ...(gid !== undefined ? { gid } : {}),
        ...(nsPid !== undefined ? { nsPid } : {}),
        ...(pidNs !== undefined ? { pidNs } : {}),
        ...(mntNs !== undefined ? { mntNs } : {}),
        ...(netNs !== undefined ? { netNs } : {}),
      };
    } catch {
      return undefined;
    }
  }

  liveFacts(pid: number, startNs: number): LiveProcessFacts | undefined {
    const stat = this.statOf(pid, startNs);
    if (stat === undefined) return undefined;
    try {
      const status = readFileSync(`${this.procRoot}/${pid}/status`, "utf8");
      const uids = idLine(status, "Uid");
      const gids = idLine(status, "Gid");
      if (uids === undefined || gids === undefined) return undefined;
      return { euid: uids[1], egid: gids[1], sid: stat.sid, pgid: stat.pgid, ttyNr: stat.ttyNr };
    } catch {
      return undefined;
    }
  }

  workingDirectory(pid: number, startNs: number): string | undefined {
    try {
      const cwd = readlinkSync(`${this.procRoot}/${pid}/cwd`);
      // stat after the link: a pid reused in between shows its own start time.
      return this.isProcess(pid, startNs) ? cwd : undefined;
    } catch {
      return undefined;
    }
  }

  environment(pid: number, startNs: number, names: ReadonlySet<string>): string[] | undefined {
    if (names.size === 0) return [];
    const path = `${this.procRoot}/${pid}/environ`;
    // Most short-lived programs are gone by the time a rule looks: finding that out costs no
    // exception (a thrown ENOENT cost ~10 µs per exec with Elastic's env_vars rules loaded).
    if (this.knownGone(pid, startNs)) return undefined;
    if (!existsSync(path)) return this.gone(pid, startNs);
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch {
      return undefined;
    }
    let environ: Buffer;
    try {
      environ = this.readEnviron(fd);
    } catch {
      return undefined;
    } finally {
      closeSync(fd);
    }
    const entries = environEntriesOfBytes(environ, names);
    // A reused pid is told by its start time; with nothing found the answer is the same
    // either way (no entry is as missing as no environment to a rule), so no stat is read.
    if (entries.length === 0) return entries;
    return this.isProcess(pid, startNs) ? entries : undefined;
  }

  /**
   * environ's bytes: a few KiB usually, one read into a reused buffer; a larger environment
   * is read on into a buffer of its own (so the daemon keeps no large one), at most the
   * kernel's own bound on an exec's arguments and environment, so a variable put after
   * megabytes of padding is still found and no read is unbounded.
   */
  private readEnviron(fd: number): Buffer {
    let buffer = this.environBuffer;
    let length = 0;
    for (;;) {
      if (length === buffer.length) {
        if (length >= MAX_ENVIRON_BYTES) return buffer;
        const grown = Buffer.allocUnsafe(Math.min(MAX_ENVIRON_BYTES, length * 4));
        buffer.copy(grown, 0, 0, length);
        buffer = grown;
      }
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) return buffer.subarray(0, length);
      length += n;
    }
  }

  openFiles(pid: number, startNs: number): OpenFilesLook {
    if (!this.isProcess(pid, startNs)) return { status: "gone" };
    let names: string[];
    try {
      // One past the budget, not the whole folder: reading the names of 20,000 fds cost
      // 43-61 ms, the first 1,025 5-16 ms; one more than looked at says "incomplete".
      names = firstEntries(`${this.procRoot}/${pid}/fd`, this.maxFdsPerLook + 1);
    } catch {
      return { status: "gone" };
    }
    const files: OpenFile[] = [];
    const looked = Math.min(names.length, this.maxFdsPerLook);
    for (let i = 0; i < looked; i++) {
      const file = this.openFile(pid, Number(names[i]));
      if (file !== undefined) files.push(file);
    }
    return looked < names.length ? { status: "incomplete", files, reason: "fd_budget" } : { status: "complete", files };
  }

  tcpSockets(pid?: number): ExistingTcpSocket[] {
    // /proc/net is /proc/self/net: the daemon's namespace; /proc/<pid>/net is the namespace
    // that process is in now (its nsproxy), whatever namespace the reader is in.
    const dir = pid === undefined ? `${this.procRoot}/net` : `${this.procRoot}/${pid}/net`;
    const read = (name: string) => {
      try {
        return readFileSync(`${dir}/${name}`, "utf8");
      } catch {
        return "";
      }
    };
    return classifyTcpSockets([...parseTcpTable(read("tcp"), "inet"), ...parseTcpTable(read("tcp6"), "inet6")]);
  }

  unixSocketInodes(pid?: number): Set<number> {
    const dir = pid === undefined ? `${this.procRoot}/net` : `${this.procRoot}/${pid}/net`;
    let text: string;
    try {
      text = readFileSync(`${dir}/unix`, "utf8");
    } catch {
      return new Set();
    }
    return unixInodesOf(text);
  }

  netNamespace(pid?: number): number | undefined {
    return this.namespaceOf(pid ?? "self", "net");
  }

  /** The inode of a namespace of `pid` (/proc/<pid>/ns/<kind>); undefined when gone or not readable. */
  private namespaceOf(pid: number | "self", kind: "pid" | "mnt" | "net"): number | undefined {
    try {
      return namespaceInode(readlinkSync(`${this.procRoot}/${pid}/ns/${kind}`), kind);
    } catch {
      return undefined;
    }
  }

  regularFile(path: string): string | undefined {
    try {
      const real = realpathSync(path);
      return statSync(real).isFile() ? real : undefined;
    } catch {
      return undefined;
    }
  }

  fileDigest(path: string): DigestLook {
    const file = fileIdentity(path);
    if (file === undefined) return { status: "unreadable" };
    const { identity, size } = file;
    const cached = this.digests.get(identity);
    if (cached !== undefined) return cached;
    let look: DigestLook;
    if (size > this.maxHashedBytes) look = { status: "incomplete", reason: "byte_budget" };
    else {
      try {
        look = { status: "complete", sha256: createHash("sha256").update(readFileSync(path)).digest("hex") };
      } catch {
        return { status: "unreadable" };
      }
    }
    if (this.digests.size >= MAX_DIGESTS) this.digests.delete(this.digests.keys().next().value!);
    this.digests.set(identity, look);
    return look;
  }

  buildId(path: string): BuildIdLook {
    const identity = fileIdentity(path)?.identity;
    if (identity === undefined) return { status: "unreadable" };
    const cached = this.buildIds.get(identity);
    if (cached !== undefined) return cached;
    let head: Buffer;
    try {
      const fd = openSync(path, "r");
      try {
        head = Buffer.alloc(this.maxBuildIdBytes);
        head = head.subarray(0, readSync(fd, head, 0, head.length, 0));
      } finally {
        closeSync(fd);
      }
    } catch {
      return { status: "unreadable" };
    }
    const inHead = buildIdOfElfHead(head);
    const look: BuildIdLook = inHead.status === "beyond" ? { status: "incomplete", reason: "byte_budget" } : inHead;
    if (this.buildIds.size >= MAX_DIGESTS) this.buildIds.delete(this.buildIds.keys().next().value!);
    this.buildIds.set(identity, look);
    return look;
  }

  pathSeenBy(pid: number, path?: string): string {
    const dir = `${this.procRoot}/${pid}`;
    if (path === undefined) return `${dir}/exe`;
    return path.startsWith("/") ? `${dir}/root${path}` : `${dir}/cwd/${path}`;
  }

  userName(uid: number): string | undefined {
    return this.names.userName(uid);
  }

  groupName(gid: number): string | undefined {
    return this.names.groupName(gid);
  }

  private stat(pid: number): ProcStat | undefined {
    try {
      return parseStat(readFileSync(`${this.procRoot}/${pid}/stat`, "utf8"));
    } catch {
      return undefined;
    }
  }

  /**
   * The stat of `pid` while it is the process started at `startNs`. A process already gone
   * is a common answer (a storm's /bin/true has exited before its exec is judged): asked
   * first without an exception (a failed read's thrown error cost ~13 µs against ~3 µs for
   * the check), and remembered (knownGone). A read that fails otherwise (out of fds), or a
   * stat naming another start (a coarse start of a process found at start can be off), is
   * not taken for gone.
   */
  private statOf(pid: number, startNs: number): ProcStat | undefined {
    if (this.knownGone(pid, startNs)) return undefined;
    const path = `${this.procRoot}/${pid}/stat`;
    if (!existsSync(path)) return this.gone(pid, startNs);
    let stat: ProcStat | undefined;
    try {
      stat = parseStat(readFileSync(path, "utf8"));
    } catch {
      return undefined;
    }
    return stat !== undefined && sameStart(stat, startNs) ? stat : undefined;
  }

  /** The pid is still the process started at `startNs` (its start time in stat says so). */
  private isProcess(pid: number, startNs: number): boolean {
    return this.statOf(pid, startNs) !== undefined;
  }

  /**
   * Whether a read found the process (pid and start) gone, the last one found so: the rules
   * ask several things of one exec's process (its environment, its cgroups, its ids), and a
   * storm's /bin/true has exited before any is asked, each question a failed access() else.
   * Exact: a process gone stays gone, and a new one with its pid has another start.
   */
  private knownGone(pid: number, startNs: number): boolean {
    return this.lastGone.pid === pid && this.lastGone.startNs === startNs;
  }

  /** Remembers the process (pid and start) as gone; answers undefined, as a read of it would. */
  private gone(pid: number, startNs: number): undefined {
    this.lastGone.pid = pid;
    this.lastGone.startNs = startNs;
    return undefined;
  }

  private openFile(pid: number, fd: number): OpenFile | undefined {
    const link = `${this.procRoot}/${pid}/fd/${fd}`;
    let target: string;
    try {
      target = readlinkSync(link);
    } catch {
      return undefined; // closed meanwhile
    }
    const parsed = parseFdTarget(target);
    if ("object" in parsed) {
      const access = parsed.object.kind === "pipe" ? (this.fdinfoAccess(pid, fd) ?? "both") : "both";
      return { fd, object: parsed.object, access };
    }
    if ("ptmx" in parsed) {
      const index = fdinfoTtyIndex(this.fdinfo(pid, fd) ?? "");
      return index !== undefined ? { fd, object: { kind: "pty_master", index }, access: "both" } : undefined;
    }
    if (!("path" in parsed)) return undefined;
    try {
      const st = statSync(link);
      if (!st.isFIFO()) return undefined;
      // Node's st.dev is the userspace encoding of dev_t.
      const major = (st.dev >>> 8) & 0xfff;
      const minor = (st.dev & 0xff) | ((st.dev >>> 12) & 0xfff00);
      return { fd, object: { kind: "fifo", major, minor, ino: st.ino }, access: this.fdinfoAccess(pid, fd) ?? "both" };
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

  private fdinfoAccess(pid: number, fd: number) {
    const info = this.fdinfo(pid, fd);
    return info !== undefined ? fdinfoAccess(info) : undefined;
  }
}

/** /proc rounds a start time down to a tick; one tick either way allows for the conversion. */
function sameStart(stat: ProcStat, startNs: number): boolean {
  return Math.abs(stat.startTicks * START_TICK_NS - startNs) < 2 * START_TICK_NS;
}

/** dev:ino:size:mtime of a regular file: what it holds cannot change while these do not. */
function fileIdentity(path: string): { identity: string; size: number } | undefined {
  try {
    // A program looked at after its process exited is common: no exception for ENOENT.
    const st = statSync(path, { throwIfNoEntry: false });
    return st?.isFile() === true ? { identity: `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`, size: st.size } : undefined;
  } catch {
    return undefined;
  }
}

/** One buffer for every bounded read (they are synchronous): no allocation per exec. */
let scratch: Buffer | undefined;

/** At most `maxBytes` of a file's start, as UTF-8, and whether there was more. */
function readHead(path: string, maxBytes: number): { text: string; cut: boolean } {
  const fd = openSync(path, "r");
  try {
    if (scratch === undefined || scratch.length < maxBytes + 1) scratch = Buffer.allocUnsafe(Math.max(maxBytes + 1, MAX_CMDLINE_BYTES + 1));
    // /proc files have no size: read until EOF or one byte past the bound.
    const buffer = scratch.subarray(0, maxBytes + 1);
    let length = 0;
    for (;;) {
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
      if (length === buffer.length) break;
    }
    const cut = length > maxBytes;
    return { text: buffer.toString("utf8", 0, Math.min(length, maxBytes)), cut };
  } finally {
    closeSync(fd);
  }
}

/**
 * The first `most` names in a folder as the kernel lists them, in numeric order: /proc/<pid>/fd
 * lists by fd already (so stdio comes first); a test's fake tree on another filesystem may not.
 */
function firstEntries(path: string, most: number): string[] {
  const dir = opendirSync(path, { bufferSize: 128 });
  try {
    const names: string[] = [];
    while (names.length < most) {
      const entry = dir.readSync();
      if (entry === null) break;
      names.push(entry.name);
    }
    return names.sort((a, b) => Number(a) - Number(b));
  } finally {
    dir.closeSync();
  }
}

/** Kernel threads have no exe and other users' links may be unreadable: both give "". */
function readExecutable(link: string): string {
  try {
    return readlinkSync(link).replace(/ \(deleted\)$/, "");
  } catch {
    return "";
  }
}

/** A file whole if it is a regular file of at most maxBytes; one open, one fstat, one read. */
function readBounded(path: string, maxBytes: number): string | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path, "r");
    const stat = fstatSync(fd);
    if (!stat.isFile() || stat.size > maxBytes) return undefined;
    const buffer = Buffer.alloc(stat.size);
    const read = readSync(fd, buffer, 0, stat.size, 0);
    return buffer.toString("utf8", 0, read);
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * The inodes /proc/net/unix lists: `Num RefCount Protocol Flags Type St Inode [Path]`, the
 * inode the seventh column (proc(5)).
 */
export function unixInodesOf(text: string): Set<number> {
  const inodes = new Set<number>();
  let start = text.indexOf("\n") + 1; // past the header
  while (start > 0 && start < text.length) {
    const end = text.indexOf("\n", start);
    const line = text.slice(start, end < 0 ? text.length : end);
    const inode = Number(line.trim().split(/\s+/)[6]);
    if (Number.isInteger(inode) && inode > 0) inodes.add(inode);
    start = end < 0 ? text.length : end + 1;
  }
  return inodes;
}
