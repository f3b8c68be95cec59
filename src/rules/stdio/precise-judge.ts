/**
 * TRC-101's default profile: the seed's trigger (an inet socket connected or dup'ed onto fd
 * 0-2) decides *that* something is worth judging; what runs on the socket decides *whether*
 * it is a shell (docs/rules/TRC-101.md, "Profiles").
 *
 * A finding when
 * - a command interpreter puts the socket on its stdin and its stdout or stderr at once
 *   (python/perl/ruby/php one-liners, `bash -i >& /dev/tcp/... 0>&1`): at once;
 * - a program starts (exec) with the socket on stdin and is an interpreter: on a connected
 *   socket any interpreter (`nc -e /bin/sh`, `bash -i`), on an accepted one an interpreter
 *   reading its commands from stdin (a bind shell; a service script run by inetd is not);
 *   however the socket got there (SCM_RIGHTS, pidfd_getfd, io_uring, a connect onto fd 0);
 * - a program starts with the socket as its stdout or stderr, forked by a shell that read the
 *   same socket on its stdin (`while read c <&3; do $c >&3; done`).
 *
 * Otherwise a trigger is held until its process executes a program or exits, then suppressed
 * with a counted reason: a service hand-off (an accepted socket given to a program that is no
 * shell: sshd, sshd-session, inetd and systemd services), not a shell (`cat <&3`), or no
 * program (a shell builtin's `printf >&3`, `read <&3`). Holding is bounded: past the bound the
 * oldest held trigger is reported as TRC-101 would report it, never dropped.
 *
 * One socket, one finding: detections fold by the socket's inode across processes, so a
 * reverse shell's dups and every process that inherits the socket count into one finding.
 */
import type { ProcessInfo, RuleContext, RuleState } from "../../engine/rule.js";
import type { HostView } from "../../host/host-view.js";
import type { ExistingTcpSocket } from "../../host/tcp-table.js";
import type { ConnectEvent, Endpoint, ExecEvent, ExitEvent, SocketDupEvent, SocketOrigin, StdioFd, TaskContext } from "../../sensor/events.js";
import { keyLivesInTable, processKey, sweepByAge } from "../../process/process-view.js";
import { incidentKeyOfEndpoint, incidentKeyOfSocket, type IncidentKey } from "../sockets/identity.js";
import { InterpreterContents, identifyProgram, readsCommandsFromStdin, type ProgramIdentity } from "./interpreters.js";

export type Verdict =
  | "interpreter_stdio_on_socket"
  | "shell_on_socket"
  | "bind_shell"
  | "runs_commands_read_from_socket"
  | "held_past_bound"
  | "legacy_capture";

export type SuppressReason = "service_handoff" | "not_a_shell" | "no_program" | "left_stdio_before_exec" | "superseded";

type InetStdio = Extract<StdioFd, { kind: "inet" }>;
export type Trigger = ConnectEvent | SocketDupEvent;

/** What the rule turns into a Detection: the socket, the fds, and why. */
export interface Judgement {
  verdict: Verdict;
  /** The event the finding is about (a held trigger, or the exec that resolved it). */
  event: Trigger | ExecEvent;
  socketKey: IncidentKey;
  socketIno: number;
  fds: number[];
  origin: SocketOrigin;
  remote: { address: string; port: number };
  local: { address: string; port: number } | null;
  family: "inet" | "inet6";
  transport: string | undefined;
  program: { executable: string; interpreter: string | null; identifiedBy: ProgramIdentity["by"]; readsCommandsFromStdin: boolean } | null;
}

export interface PreciseOptions {
  /** How many processes may hold triggers at once; past it the oldest is reported. */
  maxHeldProcesses?: number;
  /**
   * How long (event time) a trigger is held waiting for its process's exec or exit; past it
   * (an exit record was lost) it is dropped and counted as expired.
   */
  heldMaxAgeMs?: number;
  /** How long (event time) a reported socket, unused since, keeps later processes on it folding. */
  reportedMaxAgeMs?: number;
}

interface Held {
  trigger: Trigger;
  socketKey: IncidentKey;
  fds: Set<number>;
}

const DEFAULT_MAX_HELD = 4096;
const DEFAULT_HELD_MAX_AGE_MS = 60 * 60_000;
/** As the engine's fold memory: a socket reported again after that is a new finding either way. */
const DEFAULT_REPORTED_MAX_AGE_MS = 10 * 60_000;
const MAX_HELD_SOCKETS = 8;
/** Shells that read a socket on stdin, remembered to recognise the commands they start. */
const MAX_READERS = 4096;
/** How often (event time) the tables are looked at for entries past their age. */
const SWEEP_EVERY_MS = 1000;
/** Sockets already reported, so later processes on them fold instead of being judged again. */
const MAX_ALERTED = 4096;
/** Passive sockets already resolved against the host's listeners (each look walks a TCP table). */
const MAX_PASSIVE_LOOKS = 256;
const TRANSPORT: Readonly<Record<string, string>> = { stream: "tcp", dgram: "udp" };

export class PreciseStdioJudge {
  /** process key → socket key → held trigger */
  private readonly held = new Map<string, Map<IncidentKey, Held>>();
  /** socket key → process key of a shell that read it on stdin (without writing to it). */
  private readonly readers = new Map<IncidentKey, { pk: string; timeMs: number }>();
  /** Sockets already reported, with the verdict they were reported for (later findings on them carry it). */
  private readonly alerted = new Map<IncidentKey, { verdict: Verdict; usedMs: number }>();
  private readonly maxHeld: number;
  private readonly heldMaxAgeMs: number;
  private readonly reportedMaxAgeMs: number;
  /** The latest event time seen: a held trigger judged now is judged at this time, not its own. */
  private latestMs = 0;
  private sweptAtMs = -Infinity;
  private evicted = 0;
  private expired = 0;
  /**
   * Sockets the kernel found opened from a listener but without their accept mark (its LRU
   * evicted it under an accept flood, or the accept predates the sensor), resolved by a look
   * for the listener: socket inode → inbound. Each is lost certainty, counted as incomplete.
   */
  private readonly passiveLooks = new Map<number, boolean>();
  private readonly tables = new ListenerTables();
  private unmarkedPassive = 0;
  /** Inbound sockets that existed as the sensor started (prepare): accepted before any mark could be made. */
  private startup: StartupInbound | undefined;
  /** Copied, renamed or padded interpreters, recognised by content through the rule context's host. */
  private readonly contents = new InterpreterContents();

  constructor(options: PreciseOptions = {}) {
    this.maxHeld = options.maxHeldProcesses ?? DEFAULT_MAX_HELD;
    this.heldMaxAgeMs = options.heldMaxAgeMs ?? DEFAULT_HELD_MAX_AGE_MS;
    this.reportedMaxAgeMs = options.reportedMaxAgeMs ?? DEFAULT_REPORTED_MAX_AGE_MS;
  }

  /**
   * Before the first event: the inbound sockets of every network namespace as the sensor
   * starts, read once per host view (a reload's new judge takes the first read, not a new one:
   * by then a socket without its mark may have lost it to a flood).
   */
  prepare(host: HostView): void {
    this.startup = StartupInbound.of(host);
  }

  /** Held triggers wait for their process's exec or exit; alerted sockets and shell readers are remembered. */
  state(): RuleState {
    return {
      held: this.alerted.size + this.readers.size,
      pending: this.held.size,
      indexed: 0,
      evicted: this.evicted,
      expired: this.expired,
      // A socket judged without its accept mark is a look that could not be certain (SENSOR-001).
      incomplete: this.contents.incompleteLooks + this.unmarkedPassive,
      // Held triggers past the bound are let go as findings (fail open), never dropped.
      abandoned: 0,
    };
  }

  /** A trigger TRC-101 would report; `fd` is the connect's fd or the dup's new fd. */
  onTrigger(event: Trigger, fd: number, ctx: RuleContext): (Judgement | SuppressReason)[] {
    this.expire(event.timeMs, ctx);
    const socketKey = socketKeyOf(event);
    const fds = event.socketOnFds.length > 0 ? event.socketOnFds : [fd];
    const origin: SocketOrigin = event.kind === "connect" ? "connected" : this.inbound(event.origin, event.socketIno, event.remote, event.task, event.timeMs, ctx) ? "accepted" : event.origin;
    const reported = this.alerted.get(socketKey)?.verdict;
    if (reported !== undefined) return [this.judgeTrigger(event, socketKey, fds, reported, null)];
    // No socket identity: a capture from before the sensor recorded it. What runs on the
    // socket cannot be known, so the trigger is reported as Tracee reports it.
    if (event.socketIno === 0) return [this.judgeTrigger(event, socketKey, fds, "legacy_capture", null)];

    const pk = processKey(event.task);
    const process = ctx.processes.get(event.task.pid, event.task.startNs);
    const identity = identifyProgram(process?.executable ?? "", process?.args ?? [event.task.comm]);
    // An accepted socket waits for what runs on it: servers written in an interpreter (a
    // python or node accept loop) put it on a child's stdio before executing the service.
    if (origin !== "accepted" && identity.family !== undefined && fds.includes(0) && (fds.includes(1) || fds.includes(2))) {
      return [this.judgeTrigger(event, socketKey, fds, "interpreter_stdio_on_socket", describe(process, event.task, identity, false))];
    }

    const out: (Judgement | SuppressReason)[] = [];
    let perProcess = this.held.get(pk);
    if (perProcess === undefined) {
      if (this.held.size >= this.maxHeld) out.push(...this.evictOldest());
      perProcess = new Map();
      this.held.set(pk, perProcess);
    }
    const entry = perProcess.get(socketKey) ?? { trigger: event, socketKey, fds: new Set<number>() };
    for (const f of fds) entry.fds.add(f);
    perProcess.delete(socketKey);
    perProcess.set(socketKey, entry);
    // A long-lived shell that opens a socket per health check holds one entry per socket:
    // at most three sockets sit on fds 0-2 at once, so one held behind MAX_HELD_SOCKETS newer
    // ones left stdio long ago.
    if (perProcess.size > MAX_HELD_SOCKETS) {
      const [oldestKey, oldest] = perProcess.entries().next().value!;
      perProcess.delete(oldestKey);
      out.push(this.release(oldest, pk, "superseded"));
    }
    if (identity.family === "shell" && origin !== "accepted" && fds.length === 1 && fds[0] === 0) this.rememberReader(socketKey, pk, event.timeMs);
    return out;
  }

  onExec(event: ExecEvent, ctx: RuleContext): (Judgement | SuppressReason)[] {
    this.expire(event.timeMs, ctx);
    const stdio = event.stdio;
    // Nearly every exec of a host: nothing held anywhere, no inet socket on stdio. Nothing to
    // build for it, not even the process key.
    if (this.held.size === 0 && stdio !== null && !stdio.some(isInetOnStdio)) return NOTHING;
    const pk = processKey(event.task);
    const heldHere = this.held.get(pk);
    if (heldHere !== undefined) this.held.delete(pk);
    if (stdio === null) {
      // A capture from before exec records had stdio: what was held is reported as TRC-101 would.
      return heldHere === undefined ? [] : [...heldHere.values()].map((h) => this.release(h, pk, "legacy_capture"));
    }
    const sockets = inetSocketsOf(stdio);
    if (sockets.size === 0 && heldHere === undefined) return [];

    const out: (Judgement | SuppressReason)[] = [];
    for (const [ino, { fd: first, fds }] of sockets) {
      const socketKey = incidentKeyOfSocket(ino);
      heldHere?.delete(socketKey);
      const reported = this.alerted.get(socketKey)?.verdict;
      if (reported !== undefined) {
        out.push(this.judgeExec(event, socketKey, first, fds, reported, null));
        continue;
      }
      const onStdin = fds.includes(0);
      const identity = identifyProgram(event.filename, event.args, onStdin ? this.contents.lookFor(event.task, ctx.host) : undefined);
      const reads = identity.family !== undefined && readsCommandsFromStdin(identity.family, identity.args);
      const accepted = this.inbound(first.origin, first.ino, first.remote, event.task, event.timeMs, ctx);
      const program = describeExec(event, identity, reads);
      if (identity.family !== undefined && onStdin && (!accepted || reads)) {
        out.push(this.judgeExec(event, socketKey, first, fds, accepted ? "bind_shell" : "shell_on_socket", program));
      } else if ((fds.includes(1) || fds.includes(2)) && this.readerIsSelfOrAncestor(socketKey, event.task, ctx)) {
        out.push(this.judgeExec(event, socketKey, first, fds, "runs_commands_read_from_socket", program));
      } else {
        out.push(accepted ? "service_handoff" : "not_a_shell");
      }
      // The shell that dup'ed the socket onto its stdin did it for this program, not to read.
      if (this.readers.get(socketKey)?.pk === pk) this.readers.delete(socketKey);
    }
    if (heldHere !== undefined) for (const h of heldHere.values()) out.push(this.release(h, pk, "left_stdio_before_exec"));
    return out;
  }

  onExit(event: ExitEvent): (Judgement | SuppressReason)[] {
    if (event.timeMs > this.latestMs) this.latestMs = event.timeMs; // the sweeps run on triggers and execs
    if (this.held.size === 0) return NOTHING;
    const pk = processKey(event.task);
    const heldHere = this.held.get(pk);
    if (heldHere === undefined) return [];
    this.held.delete(pk);
    return [...heldHere.values()].map((h) => this.release(h, pk, "no_program"));
  }

  /** A held trigger let go: folded into its socket's finding if there is one, else `reason`. */
  private release(h: Held, pk: string, reason: SuppressReason | "legacy_capture"): Judgement | SuppressReason {
    if (this.readers.get(h.socketKey)?.pk === pk) this.readers.delete(h.socketKey);
    const reported = this.alerted.get(h.socketKey)?.verdict;
    if (reported !== undefined) return this.judgeTrigger(h.trigger, h.socketKey, [...h.fds], reported, null);
    return reason === "legacy_capture" ? this.judgeTrigger(h.trigger, h.socketKey, [...h.fds], reason, null) : reason;
  }

  /** Fail open: the oldest process's held triggers become findings as TRC-101 reports them. */
  private evictOldest(): Judgement[] {
    const oldest = this.held.keys().next();
    if (oldest.done === true) return [];
    const perProcess = this.held.get(oldest.value)!;
    this.held.delete(oldest.value);
    this.evicted++;
    return [...perProcess.values()].map((h) => {
      if (this.readers.get(h.socketKey)?.pk === oldest.value) this.readers.delete(h.socketKey);
      return this.judgeTrigger(h.trigger, h.socketKey, [...h.fds], "held_past_bound", null);
    });
  }

  private rememberReader(socketKey: IncidentKey, pk: string, nowMs: number): void {
    this.readers.delete(socketKey);
    this.readers.set(socketKey, { pk, timeMs: nowMs });
    if (this.readers.size > MAX_READERS) {
      this.readers.delete(this.readers.keys().next().value!);
      this.evicted++;
    }
  }

  /**
   * Drops what is past its age: held triggers whose process's exec or exit never came (a lost
   * record), reported sockets unused for reportedMaxAgeMs, shell readers as old as a held
   * trigger may be whose process no longer lives (a live one is kept, as if new: a shell that
   * waits an hour before its first command is still recognised). Each table is in age order,
   * so a sweep stops at the first young entry.
   */
  private expire(nowMs: number, ctx: RuleContext): void {
    if (nowMs > this.latestMs) this.latestMs = nowMs;
    if (nowMs - this.sweptAtMs < SWEEP_EVERY_MS) return;
    this.sweptAtMs = nowMs;
    for (const [pk, perProcess] of this.held) {
      // The first socket of a process is the one held, untouched, the longest.
      if (nowMs - perProcess.values().next().value!.trigger.timeMs <= this.heldMaxAgeMs) break;
      this.held.delete(pk);
      // Its reader entry goes with it only when the process is gone (see readers below).
      if (!keyLivesInTable(ctx.processes, pk)) for (const h of perProcess.values()) if (this.readers.get(h.socketKey)?.pk === pk) this.readers.delete(h.socketKey);
      this.expired += perProcess.size;
    }
    for (const [key, { usedMs }] of this.alerted) {
      if (nowMs - usedMs <= this.reportedMaxAgeMs) break;
      this.alerted.delete(key);
      this.expired++;
    }
    this.expired += sweepByAge(this.readers, nowMs - this.heldMaxAgeMs, (r) => r.timeMs, (_, r) => keyLivesInTable(ctx.processes, r.pk), (r) => ({ pk: r.pk, timeMs: nowMs }));
  }

  private readerIsSelfOrAncestor(socketKey: IncidentKey, task: TaskContext, ctx: RuleContext): boolean {
    const reader = this.readers.get(socketKey)?.pk;
    if (reader === undefined) return false;
    if (reader === processKey(task)) return true;
    return ctx.processes.ancestors(task.pid).some((a) => processKey(a) === reader);
  }

  /**
   * Inbound: accepted while the sensor ran; or opened from a listener (the kernel's "passive":
   * no accept mark) and listed beside a listener, with the same peer, as the sensor started
   * (accepted before any mark could be made: as certain as the mark, not counted incomplete);
   * or else, counted incomplete, passive and listed beside a listener in the holder's network
   * namespace now, or closed since, or in a namespace no live process shows any more
   * (ListenerTables; docs/design.md, "Accepted or connected"). A passive socket listed with no
   * listener (a one-shot listener, or a child disconnected and connect()ed again) is judged as
   * connected.
   */
  private inbound(origin: SocketOrigin, ino: number, remote: Endpoint | null, task: TaskContext, timeMs: number, ctx: RuleContext): boolean {
    if (origin !== "passive") return origin === "accepted";
    if (this.startup?.accepted(ino, remote) === true) return true;
    const known = this.passiveLooks.get(ino);
    if (known !== undefined) return known;
    this.unmarkedPassive++;
    const look = this.tables.look(ino, task, timeMs, ctx);
    // Only a listing is remembered: closed or unreadable from this holder, another process
    // that still holds the socket looks again in its own namespace.
    if (look !== "listener" && look !== "alone") return true;
    const listed = look === "listener";
    this.passiveLooks.set(ino, listed);
    if (this.passiveLooks.size > MAX_PASSIVE_LOOKS) this.passiveLooks.delete(this.passiveLooks.keys().next().value!);
    return listed;
  }

  /** Remembers the socket as reported (the first verdict stays), most recently used last. */
  private markAlerted(socketKey: IncidentKey, verdict: Verdict): void {
    const first = this.alerted.get(socketKey)?.verdict ?? verdict;
    this.alerted.delete(socketKey);
    this.alerted.set(socketKey, { verdict: first, usedMs: this.latestMs });
    if (this.alerted.size > MAX_ALERTED) {
      this.alerted.delete(this.alerted.keys().next().value!);
      this.evicted++;
    }
  }

  private judgeTrigger(event: Trigger, socketKey: IncidentKey, fds: number[], verdict: Verdict, program: Judgement["program"]): Judgement {
    this.markAlerted(socketKey, verdict);
    const remote = event.remote!;
    const local = event.kind === "socket_dup" ? event.local : null;
    return {
      verdict, event, socketKey, socketIno: event.socketIno, fds: [...fds].sort((a, b) => a - b), remote, local,
      origin: event.kind === "connect" ? "connected" : event.origin,
      family: event.family === "inet6" ? "inet6" : "inet",
      transport: TRANSPORT[event.socketType],
      program,
    };
  }

  private judgeExec(event: ExecEvent, socketKey: IncidentKey, socket: InetStdio, fds: number[], verdict: Verdict, program: Judgement["program"]): Judgement {
    this.markAlerted(socketKey, verdict);
    return {
      verdict, event, socketKey, socketIno: socket.ino, fds, remote: socket.remote, local: socket.local,
      origin: socket.origin, family: socket.family, transport: TRANSPORT[socket.socketType], program,
    };
  }
}

/** The socket's inode when the kernel gave it; a capture without one falls back to the endpoint. */
function socketKeyOf(event: Trigger): IncidentKey {
  return event.socketIno !== 0 ? incidentKeyOfSocket(event.socketIno) : incidentKeyOfEndpoint(event.remote!.address, event.remote!.port);
}

/**
 * How long before a table read an event must be for the read to answer for its socket: event
 * times come from the kernel's monotonic clock set against the wall clock once, at start.
 */
const TABLE_MARGIN_MS = 100;
/** Namespaces whose last table read is kept. */
const MAX_TABLES = 8;
/** Namespaces whose last reader process is remembered, for holders that are gone. */
const MAX_READERS_BY_NS = 64;

/**
 * What a passive socket's namespace shows: listed beside a listener on its local port, listed
 * with none, not listed (closed), or no table (the holder is gone and no live process shows
 * its namespace).
 */
export type TableLook = "listener" | "alone" | "closed" | "unreadable";

/**
 * The last TCP table read per network namespace, for passive sockets (opened from a listener,
 * their accept mark gone). Listed beside a listener on its local port (classifyTcpSockets's
 * "accepted"): inbound. Listed with no listener (a one-shot listener, or a child disconnected and
 * connect()ed out again): judged as connected. Not listed: the connection has ended (a short
 * hand-off answers and closes before its event is judged: seen in CI under load), so it carries
 * no live shell, and it is taken as inbound; a live reverse shell's socket is always listed.
 *
 * The table is read through the holder's /proc/<pid>/net, which shows nothing once the holder
 * has exited: an empty read would say "closed" for a socket its children still hold. So a read
 * counts only when the pid is still in the namespace afterwards (the event's netNs, else the
 * one it is in now); when it is not, the table is read through the daemon itself (same
 * namespace), the last process that showed that namespace, or the first live process found in
 * it, and when none shows it the look says "unreadable" instead of "closed".
 *
 * A read walks the kernel's whole TCP hash table (~11-20 ms, on the event loop), and one read
 * answers for every socket that existed when it was made: a socket whose event precedes the read
 * is in it unless it closed. Without this, each new passive socket cost a read of its own, so a
 * local user who evicted the accept marks and put many such sockets on stdio held the event loop
 * ~16 ms per socket. Now an event at least TABLE_MARGIN_MS older than the namespace's last read
 * is answered by it, so once the event loop falls that far behind (the reads themselves push it
 * there) a namespace is read at most about once per TABLE_MARGIN_MS of events, whatever their
 * number. An unreadable namespace is remembered the same way, so holders that exit at once do
 * not make each look walk /proc for a reader.
 */
export class ListenerTables {
  /** Per namespace: when the table was read (ctx.now()) and each listed socket's inode → beside a listener; null: unreadable. */
  private readonly tables = new Map<string, { readAtMs: number; sockets: Map<number, boolean> | null }>();
  /** Network namespace inode → the last process whose read showed it. */
  private readonly readers = new Map<number, number>();

  /** The passive socket `ino`, on an event at `timeMs` by `task`, in its namespace's table. */
  look(ino: number, task: Pick<TaskContext, "pid" | "netNs">, timeMs: number, ctx: RuleContext): TableLook {
    if (ino === 0) return "alone";
    const ns = task.netNs ?? ctx.host.netNamespace?.(task.pid);
    const key = ns === undefined ? `pid:${task.pid}` : `net:${ns}`;
    let table = this.tables.get(key);
    if (table === undefined || timeMs >= table.readAtMs - TABLE_MARGIN_MS) {
      const rows = this.read(task.pid, ns, ctx.host);
      table = { readAtMs: ctx.now(), sockets: rows === undefined ? null : new Map(rows.map((s) => [s.ino, s.origin === "accepted"])) };
      this.tables.delete(key);
      this.tables.set(key, table);
      if (this.tables.size > MAX_TABLES) this.tables.delete(this.tables.keys().next().value!);
    }
    if (table.sockets === null) return "unreadable";
    const listed = table.sockets.get(ino);
    return listed === undefined ? "closed" : listed ? "listener" : "alone";
  }

  /** The table of namespace `ns` through `pid`, else through another process in it; undefined when none shows it. */
  private read(pid: number, ns: number | undefined, host: HostView): ExistingTcpSocket[] | undefined {
    const own = tableIn(host, pid, ns);
    if (own !== undefined) {
      if (ns !== undefined) this.remember(ns, pid);
      return own;
    }
    if (ns === undefined) return undefined;
    if (host.netNamespace?.() === ns) return host.tcpSockets();
    const last = this.readers.get(ns);
    if (last !== undefined && last !== pid) {
      const rows = tableIn(host, last, ns);
      if (rows !== undefined) return rows;
    }
    for (const other of host.processIds()) {
      if (other === pid || other === last || host.netNamespace?.(other) !== ns) continue;
      const rows = tableIn(host, other, ns);
      if (rows === undefined) continue;
      this.remember(ns, other);
      return rows;
    }
    return undefined;
  }

  private remember(ns: number, pid: number): void {
    this.readers.delete(ns);
    this.readers.set(ns, pid);
    if (this.readers.size > MAX_READERS_BY_NS) this.readers.delete(this.readers.keys().next().value!);
  }
}

/**
 * The TCP table read through `pid`, when it is the table of `ns`: the pid is in that namespace
 * after the read (a gone process's read is empty; a reused pid's is another namespace's). Where
 * the namespace cannot be told, a read that lists sockets came from a live process and counts;
 * an empty one does not.
 */
function tableIn(host: HostView, pid: number, ns: number | undefined): ExistingTcpSocket[] | undefined {
  const rows = host.tcpSockets(pid);
  const now = host.netNamespace?.(pid);
  if (now !== undefined) return ns === undefined || now === ns ? rows : undefined;
  return rows.length > 0 ? rows : undefined;
}

/** Network namespaces read as the sensor starts (beyond the daemon's own): each read walks the whole TCP hash table. */
const MAX_STARTUP_NAMESPACES = 32;
/** Inbound sockets remembered from the start; past it the rest are judged as flood-evicted ones are. */
const MAX_STARTUP_SOCKETS = 65_536;
/** The first read per host view: a daemon's reload keeps its host view, and must keep this read. */
const STARTUP = new WeakMap<HostView, StartupInbound>();

/**
 * The sockets listed beside a listener on their local port in every network namespace as the
 * sensor starts (docs/design.md, "Accepted or connected"). A socket accepted before the accept
 * programs attached never had a mark, so the kernel calls it "passive"; if it was listed beside a
 * listener at start, with the peer it still has, it was accepted (a child disconnected and
 * connect()ed again has a new peer). This is what the mark would have said, so such a socket is
 * not lost certainty. Read once per host view, before the first event: a later read (a reload)
 * would take in sockets whose marks a flood evicted meanwhile.
 */
export class StartupInbound {
  /** Socket inode → its peer at start. */
  private readonly peers = new Map<number, string>();
  /** Namespaces read, and namespaces past MAX_STARTUP_NAMESPACES left unread. */
  namespaces = 0;
  unread = 0;
  /** Inbound sockets past MAX_STARTUP_SOCKETS, not remembered. */
  dropped = 0;

  static of(host: HostView): StartupInbound {
    let startup = STARTUP.get(host);
    if (startup === undefined) {
      startup = new StartupInbound(host);
      STARTUP.set(host, startup);
    }
    return startup;
  }

  private constructor(host: HostView) {
    const own = host.netNamespace?.();
    this.add(host.tcpSockets());
    this.namespaces = 1;
    if (host.netNamespace === undefined) return;
    const seen = new Set<number | undefined>([own, undefined]);
    for (const pid of host.processIds()) {
      const ns = host.netNamespace(pid);
      if (seen.has(ns)) continue;
      if (this.namespaces >= 1 + MAX_STARTUP_NAMESPACES) {
        seen.add(ns);
        this.unread++;
        continue;
      }
      // A process gone meanwhile: the namespace is read through the next one found in it.
      const rows = tableIn(host, pid, ns);
      if (rows === undefined) continue;
      seen.add(ns);
      this.add(rows);
      this.namespaces++;
    }
  }

  /** `ino` was listed beside a listener at start with `remote` as its peer. */
  accepted(ino: number, remote: Endpoint | null): boolean {
    return remote !== null && this.peers.get(ino) === peerOf(remote);
  }

  get size(): number {
    return this.peers.size;
  }

  private add(rows: readonly ExistingTcpSocket[]): void {
    for (const s of rows) {
      if (s.origin !== "accepted") continue;
      if (this.peers.size >= MAX_STARTUP_SOCKETS) this.dropped++;
      else this.peers.set(s.ino, peerOf(s.remote));
    }
  }
}

const peerOf = (e: Endpoint): string => `${e.address} ${e.port}`;

/** The judge's "nothing to say", shared: callers only read it. */
const NOTHING: (Judgement | SuppressReason)[] = [];
Object.freeze(NOTHING);

const isInetOnStdio = (s: StdioFd): boolean => s.kind === "inet" && s.remote.port !== 0;

/** Inet sockets on fds 0-2, by inode: the first fd's record and every fd holding it. */
function inetSocketsOf(stdio: readonly StdioFd[]): Map<number, { fd: InetStdio; fds: number[] }> {
  const sockets = new Map<number, { fd: InetStdio; fds: number[] }>();
  stdio.forEach((s, fd) => {
    if (!isInetOnStdio(s) || s.kind !== "inet") return;
    const seen = sockets.get(s.ino);
    if (seen !== undefined) seen.fds.push(fd);
    else sockets.set(s.ino, { fd: s, fds: [fd] });
  });
  return sockets;
}

function describe(process: ProcessInfo | undefined, task: TaskContext, identity: ProgramIdentity, reads: boolean): Judgement["program"] {
  return { executable: process?.executable ?? task.comm, interpreter: identity.family ?? null, identifiedBy: identity.by, readsCommandsFromStdin: reads };
}

function describeExec(event: ExecEvent, identity: ProgramIdentity, reads: boolean): Judgement["program"] {
  return { executable: event.filename, interpreter: identity.family ?? null, identifiedBy: identity.by, readsCommandsFromStdin: reads };
}
