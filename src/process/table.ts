/**
 * The process table: pid → what the process is (executable, args, parent, ...), so a
 * finding about a dup can say which program did it and who started it.
 *
 * Seeded once from /proc (processes that started before the sensor), then fed by the
 * sensor's fork/exec/exit events. It is bounded: past `maxEntries` the longest-exited entry
 * goes first, then the least recently updated live one. An exited entry that forked lingers
 * for `exitedLingerMs` of event time (60 s by default), so that findings about its children
 * and grandchildren built after it exited still name it as parent or ancestor; one that never
 * forked (most exits of a busy host) for at most 5 s, which covers its own late records.
 *
 * A pid is only one process for a while: every entry keeps the kernel's start time
 * (task->start_boottime) and an event whose task.startNs differs replaces the entry.
 */
import { containerOfCgroupPath, type ContainerIdentity } from "../host/container.js";
import type { ContainerMetadata } from "../host/container-metadata.js";
import { basename } from "node:path";
import { OFFLINE_HOST, START_TICK_NS, type HostView, type ProcessRecord } from "../host/host-view.js";
import type { LiveProcessFacts, ProcessInfo, ProcessView } from "./process-view.js";
import type { AlreadyRunningEvent, ExecEvent, ExitEvent, ForkEvent, SensorEvent, StdioFd, TaskContext } from "../sensor/events.js";
import { OptionError } from "../errors.js";

export interface ProcessTableOptions {
  /** Most entries kept (live and exited together). */
  maxEntries?: number;
  /** How long (event time) an exited process that forked stays to enrich late findings (one that never forked: at most 5 s). */
  exitedLingerMs?: number;
  /**
   * Heap bytes of argv one entry keeps (each argument costs its length plus ARG_OVERHEAD_BYTES);
   * the arguments past it are left out and the entry is flagged `argsTruncated`.
   */
  maxArgvBytes?: number;
  /** Heap bytes of argv the whole table keeps; past it a new entry keeps its argv[0] only, cut to 256 characters (flagged). */
  maxArgvBytesTotal?: number;
  /**
   * The host the events come from: seeding, and the live facts rules ask for, read it. A
   * daemon gives a ProcHostView; the default, OFFLINE_HOST, shows nothing (a replay, a test).
   */
  host?: HostView;
}

export interface ProcessTableStats {
  size: number;
  live: number;
  exited: number;
  /** Entries dropped to stay within maxEntries (not counting lingering exits that expired). */
  evicted: number;
  /** Exited entries removed after their linger time. */
  expired: number;
  /** Entries replaced because an event showed the pid now belongs to another process. */
  pidReused: number;
  /** Heap bytes of argv the entries keep now (as the bounds count them). */
  argvBytes: number;
  /** Entries whose argv was cut by a bound, since the table was made. */
  argvTruncated: number;
}

export interface SeedReport {
  seeded: number;
  /** pids that vanished or could not be read while seeding (normal on a busy host). */
  skipped: number;
  /** One event per process seeded, in pid order, stamped with the time of the seeding. */
  alreadyRunning: AlreadyRunningEvent[];
}

/** When something happened, in both of an event's clocks. */
export interface EventTime {
  /** CLOCK_MONOTONIC ns, the kernel's bpf_ktime_get_ns() clock. */
  timeNs: number;
  /** Wall-clock ms since the epoch. */
  timeMs: number;
}

function timeNow(): EventTime {
  // hrtime is CLOCK_MONOTONIC on Linux, the clock of the kernel's event stamps.
  return { timeNs: Number(process.hrtime.bigint()), timeMs: Date.now() };
}

interface Entry {
  info: Readonly<ProcessInfo>;
  /**
   * Seeded entries know their start time only to /proc's clock-tick precision; the first
   * event about them carries the exact value, which then replaces the estimate.
   */
  startIsCoarse: boolean;
  /**
   * Some process was seen forking from this one (or it was found running, children unknown).
   * Only such an exited entry can still be a later event's parent or ancestor; a leaf's
   * lingers briefly (LEAF_LINGER_MS).
   */
  hadChildren: boolean;
  /** When it exited (event time); 0 while live. Every entry has every field, so all share one shape. */
  exitedAtMs: number;
  /** Heap bytes its argv counts for (0 when it shares its parent's, as a forked child does). */
  argvCost: number;
}

/** One exit queue: items in exit order, read from `head`; an item is stale once its pid left `exited` or holds a later exit. */
class ExitQueue {
  private items: { pid: number; entry: Entry }[] = [];
  private head = 0;
  constructor(readonly lingerMs: number) {}
  push(pid: number, entry: Entry): void {
    this.items.push({ pid, entry });
  }
  /** The earliest exit still in `exited`; skips stale items. */
  front(exited: ReadonlyMap<number, Entry>): { pid: number; entry: Entry } | undefined {
    for (; this.head < this.items.length; this.head++) {
      const item = this.items[this.head]!;
      if (exited.get(item.pid) === item.entry) return item;
    }
    return undefined;
  }
  /** Past the item front() returned. */
  dropFront(): void {
    this.head++;
    // Cut the consumed front off once it is most of the array: amortized O(1) per exit.
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items.splice(0, this.head);
      this.head = 0;
    }
  }
}

const DEFAULT_MAX_ENTRIES = 32_768;
const DEFAULT_EXITED_LINGER_MS = 60_000;
/**
 * How long an exited process that never forked stays. Nothing later can name it as a parent
 * (a child's fork comes before its parent's exit); this covers late enrichment of its own
 * records. Under a process storm nearly every exit is such a leaf: kept 60 s, they were
 * 30,000 entries and ~10 MB of heap at 500 fork+execs/s, and the major GCs marking them a
 * quarter of the daemon's CPU (bench/README.md).
 */
const LEAF_LINGER_MS = 5_000;
const DEFAULT_MAX_ANCESTORS = 16;
/**
 * What one kept argument costs besides its characters: the string's header and its slot in the
 * array. A process can exec with 4,095 one-byte arguments, so counting characters alone would
 * let argv cost a table 30 times its count.
 */
const ARG_OVERHEAD_BYTES = 32;
/** About 500 short arguments, or a few long ones: more than any rule's pattern reads. */
const DEFAULT_MAX_ARGV_BYTES = 16 * 1024;
/** 1 KiB average over a full table of 32,768 entries. */
const DEFAULT_MAX_ARGV_BYTES_TOTAL = 32 * 1024 * 1024;
/** What is left of argv[0] once the total is spent: the table's worst case stays the total plus 288 bytes an entry. */
const ARGV0_FLOOR = 256;

/** Cgroups whose container was looked up, kept (bounded: a cgroup per container and service). */
const MAX_CONTAINER_LOOKS = 4096;

export class ProcessTable implements ProcessView {
  private readonly maxEntries: number;
  private readonly exitedLingerMs: number;
  readonly host: HostView;
  // Two maps whose insertion order is the eviction order: live by last update, exited by
  // exit time. A pid is in at most one of them.
  private readonly live = new Map<number, Entry>();
  private readonly exited = new Map<number, Entry>();
  // `exited` in exit order again, one queue per linger time (parents, leaves). The oldest exit is
  // looked for on every event (expiry) and on every insert into a full table, and a Map
  // iterator starts by stepping over every entry deleted since the Map's last rehash (up to
  // its capacity): once exits filled the table, that cost 17 µs per fork+exec+exit.
  private readonly parentExits: ExitQueue;
  private readonly leafExits: ExitQueue;
  private latestEventMs = 0;
  private evicted = 0;
  private expired = 0;
  private pidReused = 0;
  private readonly maxArgvBytes: number;
  private readonly maxArgvBytesTotal: number;
  private argvBytes = 0;
  private argvTruncated = 0;
  /** Seeded from the host: pids in events are this host's, so the host may be asked about them. */
  private liveHost = false;
  private readonly containers = new Map<string, ContainerIdentity | undefined>();
  private readonly containerNames = new Map<string, ContainerMetadata | undefined>();
  /** `pid:startNs` → the container its v1 hierarchies name (hybrid hosts only). */
  private readonly v1Containers = new Map<string, ContainerIdentity | undefined>();

  constructor(options: ProcessTableOptions = {}) {
    this.maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
    this.exitedLingerMs = options.exitedLingerMs ?? DEFAULT_EXITED_LINGER_MS;
    this.parentExits = new ExitQueue(this.exitedLingerMs);
    this.leafExits = new ExitQueue(Math.min(this.exitedLingerMs, LEAF_LINGER_MS));
    this.host = options.host ?? OFFLINE_HOST;
    this.maxArgvBytes = options.maxArgvBytes ?? DEFAULT_MAX_ARGV_BYTES;
    this.maxArgvBytesTotal = options.maxArgvBytesTotal ?? DEFAULT_MAX_ARGV_BYTES_TOTAL;
    if (!(this.maxEntries >= 1)) throw new OptionError(`maxEntries must be at least 1, got ${this.maxEntries}`);
  }

  get size(): number {
    return this.live.size + this.exited.size;
  }

  stats(): ProcessTableStats {
    return {
      size: this.size,
      live: this.live.size,
      exited: this.exited.size,
      evicted: this.evicted,
      expired: this.expired,
      pidReused: this.pidReused,
      argvBytes: this.argvBytes,
      argvTruncated: this.argvTruncated,
    };
  }

  get(pid: number, startNs?: number): ProcessInfo | undefined {
    const entry = this.live.get(pid) ?? this.exited.get(pid);
    if (entry === undefined) return undefined;
    if (startNs !== undefined && !this.isSameIncarnation(entry, startNs)) return undefined;
    return entry.info;
  }

  ancestors(pid: number, max = DEFAULT_MAX_ANCESTORS): ProcessInfo[] {
    const chain: ProcessInfo[] = [];
    const seen = new Set<number>([pid]);
    let child = this.get(pid);
    while (child !== undefined && chain.length < max) {
      const parentPid = child.ppid;
      if (parentPid <= 0 || seen.has(parentPid)) break;
      seen.add(parentPid);
      const parent = this.get(parentPid);
      // A parent cannot start after its child: such an entry is a later owner of the pid.
      if (parent === undefined || parent.startNs > child.startNs) break;
      chain.push(parent);
      child = parent;
    }
    return chain;
  }

  /**
   * Reads every process of the host once. Call at start, before feeding events. The report's
   * already_running events are for the engine to run through the rules (Pipeline.seedFromProc
   * does both); the table itself already holds their processes.
   */
  seedFromProc(now: EventTime = timeNow()): SeedReport {
    this.liveHost = true;
    const seeded: ProcessInfo[] = [];
    // Kept for the already_running events only: the table's entries have no namespace fields
    // (the events about a process carry their own).
    const namespaces = new Map<number, SeededNamespaces>();
    let skipped = 0;
    for (const pid of this.host.processIds()) {
      const record = this.host.processRecord(pid);
      if (record === undefined) {
        skipped++;
        continue;
      }
      const kept = this.keptArgs(record.args);
      const info = seededInfo(record, kept.args);
      this.insert({ info: Object.freeze(info), startIsCoarse: true, hadChildren: true, exitedAtMs: 0, argvCost: kept.cost });
      seeded.push(info);
      namespaces.set(pid, seededNamespaces(record));
    }
    seeded.sort((a, b) => a.pid - b.pid);
    // After the loop: a parent's comm is known whichever of the two /proc listed first.
    // Every real /proc/<pid>/status has a Gid line: an entry without one makes no event
    // rather than one with a made-up group.
    const alreadyRunning = seeded.flatMap((info) =>
      info.gid !== undefined ? [alreadyRunningEvent(info, info.gid, this.get(info.ppid), namespaces.get(info.pid) ?? {}, now)] : [],
    );
    return { seeded: seeded.length, skipped, alreadyRunning };
  }

  /**
   * The live facts below are asked of the host only on a table seeded from it (never in a
   * replay) and never for a pid whose exit was seen, so a reused pid does not lend its facts;
   * the host also checks that the pid is still the incarnation that started at `startNs`.
   */
  workingDirectory(pid: number, startNs?: number): string | undefined {
    if (!this.isLive(pid)) return undefined;
    return this.host.workingDirectory(pid, startNs ?? this.live.get(pid)!.info.startNs);
  }

  liveFacts(pid: number, startNs: number): LiveProcessFacts | undefined {
    return this.isLive(pid) ? this.host.liveFacts(pid, startNs) : undefined;
  }

  /** Only the variables among `names`; the rest of the environment is never kept. */
  environment(pid: number, startNs: number, names: ReadonlySet<string>): string[] | undefined {
    if (names.size === 0 || !this.isLive(pid)) return undefined;
    return this.host.environment(pid, startNs, names);
  }

  bootId(): string {
    return this.host.bootId();
  }

  hostId(): string {
    return this.host.hostId();
  }

  userName(uid: number): string | undefined {
    return this.liveHost ? this.host.userName(uid) : undefined;
  }

  groupName(gid: number): string | undefined {
    return this.liveHost ? this.host.groupName(gid) : undefined;
  }

  container(cgroupId: number, pid: number): ContainerIdentity | undefined {
    if (!this.liveHost) return undefined;
    const identity = this.containerIdentity(cgroupId, pid);
    return identity === undefined ? undefined : { ...identity, ...this.containerMetadata(identity, pid) };
  }

  /** The container of a process from its cgroups, without the runtime's names. */
  private containerIdentity(cgroupId: number, pid: number): ContainerIdentity | undefined {
    // One look per cgroup: findings come in floods (a decoy flood makes thousands), and a read of
    // /proc/<pid>/cgroup per finding held the event loop (decoy-flood lag p99 19 -> 81 ms).
    const key = cgroupId !== 0 ? String(cgroupId) : `pid:${pid}`;
    let identity: ContainerIdentity | undefined;
    if (this.containers.has(key)) identity = this.containers.get(key);
    else {
      const path = this.host.cgroupPath(cgroupId, pid);
      // An unresolved id is looked at again later: its folder may appear in the next walk.
      if (path === undefined) return undefined;
      identity = containerOfCgroupPath(path);
      remember(this.containers, key, identity);
    }
    // A cgroup id of the host's is not the last word on a hybrid host: a container its runtime
    // put in the v1 hierarchies only shares that unified-hierarchy cgroup with host processes
    // (its shim's, or the root), so the v1 hierarchies are asked, once per process. A process
    // seeded from /proc (id 0) had its v1 lines read with the rest of its file.
    return identity !== undefined || cgroupId === 0 ? identity : this.v1ContainerIdentity(pid);
  }

  /**
   * The container of a live process from its v1 hierarchies; one look per process (pid and
   * start), and none on a host without v1 hierarchies (the host view answers at once). Not for
   * a process whose exit was seen: its pid may be another's by now, and v1 cgroups have no id
   * in events to resolve later.
   */
  private v1ContainerIdentity(pid: number): ContainerIdentity | undefined {
    const entry = this.live.get(pid);
    if (entry === undefined || this.host.cgroupV1ContainerPath === undefined) return undefined;
    const key = `${pid}:${entry.info.startNs}`;
    if (this.v1Containers.has(key)) return this.v1Containers.get(key);
    const path = this.host.cgroupV1ContainerPath(pid, entry.info.startNs);
    const identity = path === undefined ? undefined : containerOfCgroupPath(path);
    remember(this.v1Containers, key, identity);
    return identity;
  }

  /**
   * The runtime's names for a container: one read per container id (they never change). Read
   * through a host process's root: pid 1's, else the container's monitor (conmon, a shim: the
   * nearest ancestor outside the container), farthest first, and never a root inside the
   * container itself, whose files its processes could write.
   */
  private containerMetadata(identity: ContainerIdentity, pid: number): ContainerMetadata | undefined {
    if (this.containerNames.has(identity.id)) return this.containerNames.get(identity.id);
    if (this.host.containerMetadata === undefined) return undefined;
    // A known path that names no container, or another one, is outside; the v1 hierarchies are
    // asked too, as a v1-only container's processes have a host cgroup id.
    const outside = this.ancestors(pid)
      .filter((a) => {
        const path = a.pid === 1 ? undefined : this.host.cgroupPath(a.cgroupId, a.pid);
        if (path === undefined) return false;
        const inside = containerOfCgroupPath(path) ?? (a.cgroupId !== 0 ? this.v1ContainerIdentity(a.pid) : undefined);
        return inside?.id !== identity.id;
      })
      .map((a) => a.pid)
      .reverse();
    const metadata = this.host.containerMetadata(identity, [1, ...outside]);
    remember(this.containerNames, identity.id, metadata);
    return metadata;
  }

  private isLive(pid: number): boolean {
    return this.liveHost && this.live.has(pid);
  }

  /** Feeds one event; only fork, exec and exit change the table. */
  apply(event: SensorEvent): void {
    if (event.timeMs > this.latestEventMs) {
      this.latestEventMs = event.timeMs;
      this.expireExited();
    }
    switch (event.kind) {
      case "fork":
        this.applyFork(event);
        return;
      case "exec":
        this.applyExec(event);
        return;
      case "exit":
        this.applyExit(event);
        return;
      case "already_running":
        this.applyAlreadyRunning(event);
        return;
      case "connect":
      case "socket_dup":
      case "outbound":
      case "accept":
      case "cred_change":
        return;
      default: {
        // Compile-time exhaustiveness only: at run time an unknown kind (a newer sensor)
        // is the engine's to count, and the table just ignores it.
        const unhandled: never = event;
        void unhandled;
        return;
      }
    }
  }

  private applyFork(event: ForkEvent): void {
    // A new thread is not a new process: same thread group, nothing to record.
    if (event.task.tid !== event.task.pid) return;
    const forker = this.live.get(event.task.ppid);
    if (forker !== undefined) forker.hadChildren = true;
    const existing = this.entryOf(event.task.pid);
    if (existing !== undefined && this.isSameIncarnation(existing, event.task.startNs)) return;
    // Until it execs, a child runs its parent's program with its parent's argv.
    const parent = this.get(event.task.ppid);
    const { task } = event;
    const info = processInfo(task, parent?.executable ?? "", parent?.name ?? task.comm, parent?.args ?? []);
    if (parent?.argsTruncated === true) info.argsTruncated = true;
    this.replace(task.pid, existing, info, 0);
  }

  private applyExec(event: ExecEvent): void {
    const existing = this.entryOf(event.task.pid);
    const same = existing !== undefined && this.isSameIncarnation(existing, event.task.startNs);
    // The filename is kept as execve got it, even when relative: resolving it through
    // /proc/<pid>/exe would cost a syscall per exec on the busiest stream and could read a
    // later program of the same pid. The kernel-side path (bprm->file) is the real fix.
    // Every field of an entry comes from the exec event itself (an exec replaces the
    // program, its name and argv; the task facts are the newest), so nothing of `existing`
    // is carried over.
    const { task } = event;
    // Counted before the previous entry of the pid leaves (a little early for the total bound).
    const kept = this.keptArgs(event.args, event.argsTruncated);
    const info = processInfo(task, event.filename, basename(event.filename) || task.comm, kept.args);
    if (kept.truncated) info.argsTruncated = true;
    if (event.stdio !== null) info.interactive = isInteractive(event.stdio);
    this.replace(task.pid, same ? undefined : existing, info, kept.cost);
  }

  /**
   * A live daemon's table holds these processes since its seeding; a replay's learns them
   * here, as the daemon's table did from /proc.
   */
  private applyAlreadyRunning(event: AlreadyRunningEvent): void {
    const existing = this.entryOf(event.task.pid);
    if (existing !== undefined && this.isSameIncarnation(existing, event.task.startNs)) return;
    const { task } = event;
    const kept = this.keptArgs(event.args);
    const info = processInfo(task, event.executable, event.executable === "" ? task.comm : basename(event.executable), kept.args);
    if (kept.truncated) info.argsTruncated = true;
    if (existing !== undefined) this.pidReused++;
    this.insert({ info: Object.freeze(info), startIsCoarse: true, hadChildren: true, exitedAtMs: 0, argvCost: kept.cost });
  }

  private applyExit(event: ExitEvent): void {
    const pid = event.task.pid;
    const entry = this.live.get(pid);
    if (entry === undefined || !this.isSameIncarnation(entry, event.task.startNs)) return;
    this.live.delete(pid); // the entry moves to `exited` with its argv: the total stays
    // The entry's own facts stay (an exiting child may already be reparented); a literal
    // for the same reason as processInfo().
    const i = entry.info;
    const exitedEntry: Entry = {
      info: Object.freeze({
        pid: i.pid, ppid: i.ppid, startNs: event.task.startNs, uid: i.uid, gid: i.gid, comm: i.comm, cgroupId: i.cgroupId,
        executable: i.executable, name: i.name, args: i.args, exited: true, interactive: i.interactive, argsTruncated: i.argsTruncated,
      }),
      startIsCoarse: false,
      hadChildren: entry.hadChildren,
      exitedAtMs: event.timeMs,
      argvCost: entry.argvCost,
    };
    this.exited.set(pid, exitedEntry);
    (exitedEntry.hadChildren ? this.parentExits : this.leafExits).push(pid, exitedEntry);
  }

  private entryOf(pid: number): Entry | undefined {
    return this.live.get(pid) ?? this.exited.get(pid);
  }

  /** Writes a live entry for `pid`; `previous` set means another process held the pid. */
  private replace(pid: number, previous: Entry | undefined, info: ProcessInfo, argvCost: number): void {
    if (previous !== undefined) this.pidReused++;
    // The same process exec'ing keeps its children; another process on the pid has none yet.
    const hadChildren = previous === undefined && this.live.get(pid)?.hadChildren === true;
    this.insert({ info: Object.freeze(info), startIsCoarse: false, hadChildren, exitedAtMs: 0, argvCost });
  }

  private insert(entry: Entry): void {
    const pid = entry.info.pid;
    this.remove(this.live, pid);
    this.remove(this.exited, pid);
    this.live.set(pid, entry);
    this.argvBytes += entry.argvCost;
    while (this.size > this.maxEntries) {
      if (!this.dropOldestExited()) {
        const oldestLive = this.live.keys().next();
        if (oldestLive.done === true) break;
        this.remove(this.live, oldestLive.value);
      }
      this.evicted++;
    }
  }

  /** Deletes `pid` from one of the two maps, with its argv from the total. */
  private remove(map: Map<number, Entry>, pid: number): void {
    const entry = map.get(pid);
    if (entry === undefined) return;
    map.delete(pid);
    this.argvBytes -= entry.argvCost;
  }

  /**
   * The arguments an entry keeps: as many as fit in maxArgvBytes, and only argv[0] once the
   * table's total is past maxArgvBytesTotal; frozen, with their cost. `truncated` also when the
   * kernel record was already cut.
   */
  private keptArgs(args: readonly string[], alreadyTruncated = false): { args: string[]; cost: number; truncated: boolean } {
    const spent = this.argvBytes >= this.maxArgvBytesTotal;
    const budget = spent ? 0 : this.maxArgvBytes;
    let cost = 0;
    let count = 0;
    for (; count < args.length; count++) {
      const next = cost + args[count]!.length + ARG_OVERHEAD_BYTES;
      if (next > budget) break;
      cost = next;
    }
    const kept = args.slice(0, count);
    // argv[0] is always kept, cut to the per-entry bound (the floor once the total is spent): it names the program.
    if (count === 0 && args.length > 0) {
      kept.push(args[0]!.slice(0, spent ? Math.min(ARGV0_FLOOR, this.maxArgvBytes) : this.maxArgvBytes));
      cost = kept[0]!.length + ARG_OVERHEAD_BYTES;
    }
    const truncated = kept.length < args.length || (kept.length > 0 && kept[0] !== args[0]);
    if (truncated) this.argvTruncated++;
    return { args: Object.freeze(kept) as string[], cost, truncated: truncated || alreadyTruncated };
  }

  private expireExited(): void {
    // Exit order is (nearly) time order, so the expired entries are at each queue's front.
    for (const queue of [this.parentExits, this.leafExits]) {
      for (let oldest = queue.front(this.exited); oldest !== undefined; oldest = queue.front(this.exited)) {
        if (oldest.entry.exitedAtMs + queue.lingerMs > this.latestEventMs) break;
        this.remove(this.exited, oldest.pid);
        queue.dropFront();
        this.expired++;
      }
    }
  }

  /** Drops the earliest exit of either queue (the table is full); false when none is left. */
  private dropOldestExited(): boolean {
    const parent = this.parentExits.front(this.exited);
    const leaf = this.leafExits.front(this.exited);
    const fromParents = parent !== undefined && (leaf === undefined || parent.entry.exitedAtMs <= leaf.entry.exitedAtMs);
    const [queue, oldest] = fromParents ? [this.parentExits, parent] : [this.leafExits, leaf];
    if (oldest === undefined) return false;
    this.remove(this.exited, oldest.pid);
    queue.dropFront();
    return true;
  }

  private isSameIncarnation(entry: Entry, startNs: number): boolean {
    if (!entry.startIsCoarse) return entry.info.startNs === startNs;
    // /proc rounds down to a tick; allow one tick either way for the ns→tick conversion.
    return Math.abs(entry.info.startNs - startNs) < 2 * START_TICK_NS;
  }
}

/**
 * A live entry from an event's task facts. One literal, not spreads: V8 (Node 20) copies
 * `{ ...facts, executable }` on a slow runtime path, which costs about 2 µs of the full
 * pipeline's 13.5 µs of JavaScript per fork+exec.
 */
function processInfo(task: TaskContext, executable: string, name: string, args: string[]): ProcessInfo {
  return {
    pid: task.pid, ppid: task.ppid, startNs: task.startNs, uid: task.uid, gid: task.gid, comm: task.comm, cgroupId: task.cgroupId,
    executable, name, args, exited: false, interactive: undefined, argsTruncated: undefined,
  };
}

/** Keeps `value` under `key`, the oldest key leaving past MAX_CONTAINER_LOOKS. */
function remember<V>(map: Map<string, V>, key: string, value: V): void {
  if (map.size >= MAX_CONTAINER_LOOKS) map.delete(map.keys().next().value!);
  map.set(key, value);
}

/** The namespace fields of a TaskContext, as /proc showed them for a process found running. */
type SeededNamespaces = Pick<TaskContext, "nsPid" | "pidNs" | "mntNs" | "netNs">;

function seededNamespaces(record: ProcessRecord): SeededNamespaces {
  return {
    ...(record.nsPid !== undefined ? { nsPid: record.nsPid } : {}),
    ...(record.pidNs !== undefined ? { pidNs: record.pidNs } : {}),
    ...(record.mntNs !== undefined ? { mntNs: record.mntNs } : {}),
    ...(record.netNs !== undefined ? { netNs: record.netNs } : {}),
  };
}

/**
 * The already_running event of a process seeded from /proc; `parent` is its parent's entry, if
 * any. Its task carries the namespaces /proc showed, as a kernel record's does, so a finding
 * about a process that started before the sensor names them too.
 */
function alreadyRunningEvent(
  info: ProcessInfo,
  gid: number,
  parent: ProcessInfo | undefined,
  namespaces: SeededNamespaces,
  now: EventTime,
): AlreadyRunningEvent {
  return {
    kind: "already_running",
    timeNs: now.timeNs,
    timeMs: now.timeMs,
    task: {
      pid: info.pid, tid: info.pid, ppid: info.ppid, uid: info.uid, gid, cgroupId: info.cgroupId, startNs: info.startNs,
      // A parent entry that started after the child is a later owner of the pid.
      comm: info.comm, parentComm: parent !== undefined && parent.startNs <= info.startNs ? parent.comm : "",
      ...namespaces,
    },
    executable: info.executable,
    args: [...info.args],
  };
}

/**
 * ECS process.interactive: "the character device for the controlling tty is the same as
 * stdin and stderr for the process". The exec-time stdio record knows both fds' terminal
 * (by index) and whether it is the controlling one.
 */
export function isInteractive(stdio: readonly [StdioFd, StdioFd, StdioFd]): boolean {
  const [stdin, , stderr] = stdio;
  return (
    stdin.kind === "tty" && stderr.kind === "tty" && stdin.controlling && stderr.controlling && stdin.ttyIndex === stderr.ttyIndex
  );
}

/** A process seeded from the host, as a table entry, with the arguments it keeps. */
function seededInfo(record: ProcessRecord, args: string[]): ProcessInfo {
  return {
    pid: record.pid,
    ppid: record.ppid,
    startNs: record.startNs,
    executable: record.executable,
    name: record.executable === "" ? record.comm : basename(record.executable),
    args,
    ...(args.length < record.args.length || args[0] !== record.args[0] ? { argsTruncated: true } : {}),
    uid: record.uid,
    ...(record.gid !== undefined ? { gid: record.gid } : {}),
    comm: record.comm,
    // /proc gives the cgroup path, not its id (the cgroupfs inode); events fill it in.
    cgroupId: 0,
    exited: false,
  };
}
