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
 * - the socket and the shell are born together: it was connected within a few seconds of the
 *   shell's start, which a long-lived agent or runtime that spawns shells while holding
 *   unrelated connections does not show;
 * - the socket is outbound: the kernel saw it connect (an SSH session's pty master sits with
 *   an accepted socket, tmux and screen hold pty masters and no socket at all), or it existed
 *   as observation began and /proc/net/tcp shows no listener on its local port. Such a socket
 *   was connected at the latest then, so it counts as born with a shell only when observation
 *   began within connectedBeforeMs before the shell started (host/tcp-table.ts).
 */
import type { ExecEvent, OutboundEvent, ConnectEvent, TaskContext } from "../../sensor/events.js";
import type { ProcessInfo, ProcessView, RuleContext, RuleState } from "../../engine/rule.js";
import type { ExistingTcpSocket, HostView } from "../../host/host-view.js";
import { processKey } from "../../process/process-view.js";
import { OutboundRegistry, outboundSocketOf, type OutboundSocket } from "../sockets/outbound-registry.js";
import { InterpreterContents, identifyProgram, readsCommandsFromStdin, type IdentifiedBy, type InterpreterFamily } from "../stdio/interpreters.js";
import { holdingsNow, ptyMasterKey, ptySlaveKey, socketKey, stdioHolding, type Access, type EndpointKey, type Holding } from "./holdings.js";

export interface RelayGraphOptions {
  /** How long after a shell starts its pipeline may still come together (event time). */
  windowMs?: number;
  /** Most processes between the shell and the socket holder, the holder included. */
  maxHops?: number;
  /** How long before the shell's start its socket may have been connected. */
  connectedBeforeMs?: number;
  /** Outbound sockets remembered (oldest forgotten first); each for connectedBeforeMs + windowMs at most. */
  maxSockets?: number;
  /** Shells waiting for their pipeline at once (oldest dropped first, counted as evicted). */
  maxPending?: number;
  /** Processes indexed by the endpoints they started with on fds 0-2 (oldest dropped first). */
  maxIndexed?: number;
  /** How long (event time) a process stays indexed when its exit is never seen (a lost record). */
  indexedMaxAgeMs?: number;
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
}

interface Pending {
  exec: ExecEvent;
  interpreter: InterpreterFamily;
  identifiedBy: IdentifiedBy;
  untilMs: number;
}

const DEFAULTS = {
  windowMs: 5000, maxHops: 3, connectedBeforeMs: 10_000, maxSockets: 16_384, maxPending: 256, maxIndexed: 32_768, indexedMaxAgeMs: 3_600_000,
} as const;

interface Node {
  pid: number;
  startNs: number;
}

/** Shared "no verdict": read only. */
const NO_VERDICTS: RelayVerdict[] = [];
Object.freeze(NO_VERDICTS);

export class RelayGraph {
  private readonly opts: Required<RelayGraphOptions>;
  /** Who connected which socket: a socket can be born with a shell only for connectedBeforeMs + windowMs. */
  private readonly sockets: OutboundRegistry<RelaySocket>;
  /** endpoint key → processes that started with it on fds 0-2 (process key → node) */
  private readonly stdioHolders = new Map<EndpointKey, Map<string, Node>>();
  /** process key → endpoint keys it is indexed under and when, in exec order */
  private readonly indexedUnder = new Map<string, { keys: EndpointKey[]; timeMs: number }>();
  private readonly pending = new Map<string, Pending>();
  /** Outbound sockets that existed as observation began (inode → socket), while they can matter. */
  private existing = new Map<number, OutboundSocket>();
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
    this.sockets = new OutboundRegistry({ maxSockets: this.opts.maxSockets, maxAgeMs: this.opts.connectedBeforeMs + this.opts.windowMs });
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
    this.observe(event.timeMs);
    this.sockets.remember({ ...socket, ppid: event.task.ppid }, event.timeMs);
    return this.reevaluate(event.timeMs, ctx, () => true);
  }

  onExec(event: ExecEvent, ctx: RuleContext): RelayVerdict[] {
    this.observe(event.timeMs);
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

    // Pipeline members start in any order: a sibling's or child's exec may complete a chain.
    const related = (p: Pending) => p.exec.task.ppid === event.task.ppid || p.exec.task.pid === event.task.ppid;
    const out = this.reevaluate(event.timeMs, ctx, related);
    const identity = this.candidate(event, ctx);
    if (identity === undefined) return out;
    const verdict = this.evaluate({ exec: event, ...identity, untilMs: event.timeMs + this.opts.windowMs }, ctx);
    if (verdict !== undefined) return [...out, verdict];
    if (this.pending.size >= this.opts.maxPending) {
      this.pending.delete(this.pending.keys().next().value!);
      this.evicted++;
      this.abandoned++;
    }
    this.pending.set(pk, { exec: event, ...identity, untilMs: event.timeMs + this.opts.windowMs });
    return out;
  }

  /** Every pending shell judged again now: a host look it waited for has answered (Rule.reconsider). */
  reconsider(nowMs: number, ctx: RuleContext): RelayVerdict[] {
    return this.reevaluate(nowMs, ctx, () => true);
  }

  onExit(task: TaskContext, timeMs?: number): void {
    if (timeMs !== undefined) this.observe(timeMs);
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

  private reevaluate(nowMs: number, ctx: RuleContext, which: (p: Pending) => boolean): RelayVerdict[] {
    if (this.pending.size === 0) return NO_VERDICTS;
    const out: RelayVerdict[] = [];
    for (const [pk, p] of this.pending) {
      const expired = nowMs > p.untilMs;
      // An expired shell gets one last look (the event that completed its chain may be this
      // one), then is let go.
      if (!expired && !which(p)) continue;
      const verdict = this.evaluate(p, ctx);
      if (verdict !== undefined) out.push(verdict);
      if (verdict !== undefined || expired) this.pending.delete(pk);
      if (verdict === undefined && expired) this.expired++;
    }
    return out;
  }

  private evaluate(p: Pending, ctx: RuleContext): RelayVerdict | undefined {
    const { processes, host } = ctx;
    const shell = p.exec.task;
    // One look per process per evaluation: what it holds may change between events.
    const cache = new Map<string, Holding[] | undefined>();
    const holdingsOf = (n: Node) => {
      const k = processKey(n);
      if (!cache.has(k)) {
        const now = holdingsNow(host, n.pid, n.startNs);
        if (now?.incomplete === true) this.incomplete++;
        cache.set(k, now?.holdings);
      }
      return cache.get(k);
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
    const earliest = p.exec.timeMs - this.opts.connectedBeforeMs;
    const latest = p.exec.timeMs + this.opts.windowMs;
    const born = (s: OutboundSocket) => s.timeMs >= earliest && s.timeMs <= latest;

    const input = this.search(ends([0]), "write", shell, neighbours, holdingsOf, born, processes);
    if (input.size === 0) return undefined;
    const output = this.search(ends([1, 2]), "read", shell, neighbours, holdingsOf, born, processes);
    const verdict = (inIno: number, outIno: number): RelayVerdict => {
      const inChain = input.get(inIno)!;
      const outChain = output.get(outIno)!;
      const shellFds = [0, ...[...outChain.fds].sort((a, b) => a - b)];
      const socket = this.socket(inIno)!;
      return {
        shell: p.exec, interpreter: p.interpreter, identifiedBy: p.identifiedBy, socket, input: inChain.links, output: outChain.links, shellFds,
        ...(outIno !== inIno ? { outputSocket: this.socket(outIno)! } : {}),
      };
    };
    for (const ino of input.keys()) if (output.has(ino)) return verdict(ino, ino);
    // A relay split over two connections, one per direction (`telnet H P1 | sh | telnet H P2`):
    // both born with the shell and both to the same remote host. Two hosts are left out: a
    // downloaded script piped into a shell whose log is shipped elsewhere has that shape.
    for (const inIno of input.keys()) {
      const remote = this.socket(inIno)!.remote.address;
      for (const outIno of output.keys()) if (this.socket(outIno)!.remote.address === remote) return verdict(inIno, outIno);
    }
    return undefined;
  }

  /**
   * Breadth-first from the shell's ends: processes holding a far end with `want` access (the
   * writer of what the shell reads, the reader of what it writes), up to maxHops processes
   * away. Returns, per outbound socket reached, the first chain that reached it.
   */
  private search(
    start: { fd: number; key: EndpointKey; access: Access }[],
    want: "read" | "write",
    shell: Node,
    neighbours: Node[],
    holdingsOf: (n: Node) => Holding[] | undefined,
    born: (s: OutboundSocket) => boolean,
    processes: ProcessView,
  ): Map<number, { links: ChainLink[]; fds: Set<number> }> {
    const found = new Map<number, { links: ChainLink[]; fds: Set<number> }>();
    // One walk per shell end, so that every fd whose stream reaches a socket is named.
    for (const end of start) {
      const visited = new Set<string>([processKey(shell)]);
      let frontier = [{ keys: [end.key], links: [] as ChainLink[], shellFd: end.fd }];
      for (let hop = 0; hop < this.opts.maxHops && frontier.length > 0; hop++) {
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
                const s = h.key.startsWith("sock:") ? this.socket(Number(h.key.slice(5))) : undefined;
                return s !== undefined && born(s) ? [s] : [];
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
    const family = new Set<number>([shell.pid, shell.ppid, ...ancestors.map((a) => a.pid)]);
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
   * unseen, at the latest now. They can be born with a shell starting within connectedBeforeMs
   * from now (looked at until its window closes), never later, and are dropped after that.
   */
  private observe(nowMs: number): void {
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
    } else if (this.existing.size > 0 && nowMs > this.observedSinceMs + this.opts.connectedBeforeMs + this.opts.windowMs) {
      this.expired += this.existing.size;
      this.existing = new Map();
    }
    this.sockets.expire(nowMs);
    this.expireIndexed(nowMs);
  }

  /** Processes indexed longer than indexedMaxAgeMs: their exit was lost, or they hold nothing a new shell can reach. */
  private expireIndexed(nowMs: number): void {
    for (const [pk, { timeMs }] of this.indexedUnder) {
      if (nowMs - timeMs <= this.opts.indexedMaxAgeMs) break;
      this.unindex(pk);
      this.expired++;
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

function link(holder: Node, info: ProcessInfo | undefined, via: Holding): ChainLink {
  return {
    pid: holder.pid,
    name: info?.name ?? "",
    executable: info?.executable ?? "",
    via: { endpoint: via.key, fd: via.fd, access: via.access },
  };
}
