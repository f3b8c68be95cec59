/**
 * The outbound sockets a rule remembers: who connected which socket (by inode), bounded by
 * count per transport (least recently connected forgotten first) and by age (event time since the socket
 * was last touched). RELAY-001 and RELAY-002 each keep one; both take their sockets through
 * the one filter here.
 */
import type { ConnectEvent, Endpoint, OutboundEvent } from "../../sensor/events.js";
import { connectMayHaveSucceeded } from "./identity.js";

export interface OutboundSocket {
  ino: number;
  pid: number;
  startNs: number;
  comm: string;
  /** When it was connected (event time), or for one that existed as observation began, when that began. */
  timeMs: number;
  family: "inet" | "inet6";
  local: Endpoint | null;
  remote: Endpoint;
  /** It existed as observation began: pid, startNs and comm are unknown (0, 0, ""). */
  beforeObservation?: true;
  /** No connect of it was seen (io_uring, a forgotten record): the host's TCP table showed it outbound; pid, startNs and comm unknown. */
  connectUnseen?: true;
  /** A UDP socket (`socat UDP:`, `ncat -u`, `socat UDP-SENDTO:`); TCP when absent. */
  transport?: "udp";
  /** A UDP socket never connected: `remote` is where its first datagram went (cgroup/sendmsg). */
  unconnected?: true;
}

/**
 * The outbound socket an event shows, or undefined: a connect must be inet or inet6, to a
 * known address, of a socket with an inode, and may have succeeded; an outbound event (the
 * kernel saw the connection established) always is one.
 */
export function outboundSocketOf(event: OutboundEvent | ConnectEvent): OutboundSocket | undefined {
  if (event.kind === "connect") {
    if (event.family !== "inet" && event.family !== "inet6") return undefined;
    if (event.remote === null || event.socketIno === 0 || !connectMayHaveSucceeded(event)) return undefined;
  }
  return {
    ino: event.socketIno, pid: event.task.pid, startNs: event.task.startNs, comm: event.task.comm, timeMs: event.timeMs,
    family: event.family === "inet6" ? "inet6" : "inet", local: event.kind === "outbound" ? event.local : null, remote: event.remote!,
    ...(udp(event) ? { transport: "udp" as const } : {}),
    ...(event.kind === "outbound" && event.unconnected === true ? { unconnected: true as const } : {}),
  };
}

function udp(event: OutboundEvent | ConnectEvent): boolean {
  return event.kind === "outbound" ? event.transport === "udp" : event.socketType === "dgram";
}

export interface OutboundRegistryOptions {
  maxSockets: number;
  /** Event time after which an untouched socket is forgotten. */
  maxAgeMs: number;
}

const NONE: readonly never[] = Object.freeze([]);

/** How often (event time) the registry looks for sockets past their age. */
const SWEEP_EVERY_MS = 1000;

export class OutboundRegistry<S extends OutboundSocket = OutboundSocket> {
  /** inode → socket, in order of last touch: the oldest first. */
  private readonly sockets = new Map<number, { socket: S; touchedMs: number }>();
  /**
   * The inodes of each transport, in order of last touch, each bounded by maxSockets on its
   * own: a host's resolver connects a UDP socket per DNS query, and that churn must not push
   * out the TCP socket a relay holds (nor a burst of TCP connects a UDP relay's).
   */
  private readonly lanes = { tcp: new Set<number>(), udp: new Set<number>() };
  /** pid → inodes of the sockets it connected. */
  private readonly byPid = new Map<number, Set<number>>();
  private sweptAtMs = -Infinity;
  private evicted_ = 0;
  private expired_ = 0;

  constructor(private readonly options: OutboundRegistryOptions) {}

  get size(): number {
    return this.sockets.size;
  }

  /** Sockets forgotten to stay within maxSockets. */
  get evicted(): number {
    return this.evicted_;
  }

  /** Sockets forgotten at their age bound. */
  get expired(): number {
    return this.expired_;
  }

  get(ino: number): S | undefined {
    return this.sockets.get(ino)?.socket;
  }

  /** Remembers `socket` (replacing any earlier one of its inode) as touched at `nowMs`. */
  remember(socket: S, nowMs: number): void {
    this.forget(socket.ino);
    this.sockets.set(socket.ino, { socket, touchedMs: nowMs });
    const lane = this.lanes[socket.transport ?? "tcp"];
    lane.add(socket.ino);
    let inodes = this.byPid.get(socket.pid);
    if (inodes === undefined) this.byPid.set(socket.pid, (inodes = new Set()));
    inodes.add(socket.ino);
    if (lane.size > this.options.maxSockets) {
      this.forget(lane.values().next().value!);
      this.evicted_++;
    }
  }

  /** Marks a socket in use at `nowMs`, so its age starts again. */
  touch(ino: number, nowMs: number): void {
    const entry = this.sockets.get(ino);
    if (entry === undefined) return;
    this.sockets.delete(ino);
    entry.touchedMs = nowMs;
    this.sockets.set(ino, entry);
    const lane = this.lanes[entry.socket.transport ?? "tcp"];
    lane.delete(ino);
    lane.add(ino);
  }

  forget(ino: number): void {
    const entry = this.sockets.get(ino);
    if (entry === undefined) return;
    this.sockets.delete(ino);
    this.lanes[entry.socket.transport ?? "tcp"].delete(ino);
    const inodes = this.byPid.get(entry.socket.pid);
    inodes?.delete(ino);
    if (inodes?.size === 0) this.byPid.delete(entry.socket.pid);
  }

  /** The sockets `pid` connected (any incarnation: callers check startNs when it matters), oldest first. */
  ofPid(pid: number): readonly S[] {
    const inodes = this.byPid.get(pid);
    // Asked on every exec: most pids connected nothing, and get one shared empty answer.
    return inodes === undefined ? NONE : [...inodes].map((ino) => this.sockets.get(ino)!.socket);
  }

  values(): IterableIterator<S> {
    return (function* (entries) {
      for (const entry of entries) yield entry.socket;
    })(this.sockets.values());
  }

  /**
   * Forgets the sockets untouched for maxAgeMs; cheap to call on every event. With `stillHeld`,
   * an old socket it answers true for (its connector still lives) is touched instead: its age
   * starts again, and only the count bound can push it out.
   */
  expire(nowMs: number, stillHeld?: (socket: S) => boolean): void {
    if (nowMs - this.sweptAtMs < SWEEP_EVERY_MS) return;
    this.sweptAtMs = nowMs;
    for (const [ino, entry] of this.sockets) {
      if (nowMs - entry.touchedMs <= this.options.maxAgeMs) break;
      if (stillHeld?.(entry.socket) === true) {
        this.touch(ino, nowMs);
        continue;
      }
      this.forget(ino);
      this.expired_++;
    }
  }
}
