/**
 * process.entry_leader: the process through which a session was entered. ECS defines it as
 * the first process from a terminal or from remote access (sshd, SSM, ...), or a service
 * started directly by init; entry_meta.type says which (init, sshd, ssm, container, terminal,
 * console, unknown). Elastic's open implementation of Defend's assignment (Auditbeat's
 * add_session_metadata processor) decides it for a session leader from its terminal, its
 * parent and its parent's program, and every other process inherits its session's answer.
 * sockeye applies the same case table to evidence it holds (docs/rules/elastic.md):
 *
 * - a process's session id from its exec record (the session it exec'd in, as Elastic decides
 *   at the exec), else from /proc; it is the pid of its session leader (the kernel keeps that
 *   pid from being reused while the session has a member), whose process-table entry must have
 *   started no later than the process;
 * - the leader's controlling terminal and session id from /proc while it lives (its own
 *   session id equal to its pid proves it still leads the session);
 * - the leader's parent as the process table recorded it at the leader's exec (or fork, or as
 *   /proc showed it when sockeye started), which is the parent Elastic's assignment uses;
 * - for a leader that matches no case, its parent's answer, found the same way.
 *
 * Whenever one of these is missing (a leader or a parent gone, not in the table, a replay with
 * no /proc), the answer is "not known" and the document leaves process.entry_leader out: never
 * a guess. init itself, kernel threads and init's own session (session id 0: nothing entered
 * it) have no entry leader, as in Elastic's assignment.
 */
import type { LiveProcessFacts, ProcessInfo, ProcessView } from "../../process/process-view.js";

export type EntryType = "init" | "sshd" | "ssm" | "container" | "terminal" | "console" | "unknown";

/** Every value process.entry_leader.entry_meta.type takes in sockeye's documents. */
export const ENTRY_TYPES: readonly EntryType[] = ["init", "sshd", "ssm", "container", "terminal", "console", "unknown"];

/** A process's entry leader: the table's entry for it, and how its session was entered. */
export interface EntryLeader {
  leader: ProcessInfo;
  type: EntryType;
}

/**
 * An answer: the entry leader; null when the process has none (init, a kernel thread, init's
 * own session); undefined when the evidence is missing.
 */
export type EntryAnswer = EntryLeader | null | undefined;

/** The terminal kinds of Elastic's case table, from proc(5) tty_nr. */
type TtyKind = "pts" | "tty" | "console" | "none";

/**
 * Unix98 pseudo-terminals are majors 136-143; major 4 is the virtual consoles (minors 0-63,
 * what Elastic calls a console) and the serial lines (64-255, its "tty").
 */
export function ttyKind(ttyNr: number): TtyKind {
  if (ttyNr === 0) return "none";
  const major = (ttyNr >>> 8) & 0xfff;
  const minor = (ttyNr & 0xff) | ((ttyNr >>> 12) & 0xfff00);
  if (major >= 136 && major <= 143) return "pts";
  if (major === 4) return minor <= 63 ? "console" : minor <= 255 ? "tty" : "none";
  return "none";
}

/** Programs whose parents make a session leader an entry leader of their kind. */
const SSHD_NAMES = new Set(["sshd", "sshd-session"]); // OpenSSH 9.8 split the per-connection sshd-session out
const CONTAINER_RUNTIMES = ["containerd-shim", "runc", "conmon"];
/** A container runtime's own plumbing, never an entry leader by its parent (Elastic's "filtered" executables). */
const FILTERED = ["runc", "containerd-shim", "calico-node", "check-status", "conmon"];
/** Sessions whose leaders' parents are followed at most this far; a deeper chain is not known. */
const MAX_HOPS = 16;

const startsWithAny = (name: string, prefixes: readonly string[]) => prefixes.some((prefix) => name.startsWith(prefix));

/**
 * Answers already established, per view (one process table) and session leader (pid and start
 * time), with the program it ran: Elastic's assignment is made at the exec, so a leader that
 * execs another program is decided again. Established once, an answer stays: the leader's
 * parent, or the leader itself, may exit later without changing how the session was entered
 * (its members, `nohup`'d ones, keep it). "Not known" is never kept, so a later look can still
 * find it. At most MAX_ESTABLISHED leaders per view, the oldest let go first.
 */
type Established = Map<string, { executable: string; answer: EntryLeader | null }>;
const established = new WeakMap<ProcessView, Established>();
const MAX_ESTABLISHED = 8192;

/** Reads a process's /proc facts (a document shares one read among its fields). */
type FactsReader = () => LiveProcessFacts | undefined;

/**
 * The entry leader of the process `pid` started at `startNs`, whose parent is `ppid` and whose
 * session id is `sid` (undefined: not known). `self` is its table entry, if any; `live` reads
 * its /proc facts, needed only when it leads its session.
 */
export function entryLeaderOf(
  pid: number,
  startNs: number,
  ppid: number,
  sid: number | undefined,
  self: ProcessInfo | undefined,
  processes: ProcessView,
  live: FactsReader = () => processes.liveFacts?.(pid, startNs),
): EntryAnswer {
  return entryOf(pid, startNs, ppid, sid, self, processes, live, 0);
}

function entryOf(
  pid: number,
  startNs: number,
  ppid: number,
  sid: number | undefined,
  self: ProcessInfo | undefined,
  processes: ProcessView,
  live: FactsReader,
  hops: number,
): EntryAnswer {
  // init and kernel threads (kthreadd is pid 2, and every kernel thread its child) have none.
  if (pid === 1 || pid === 2 || ppid === 2) return null;
  if (sid === undefined) return undefined;
  // Session 0 is the one the kernel starts init in: whoever is still in it entered nothing.
  if (sid === 0) return null;
  if (sid === pid) return self === undefined ? undefined : leaderAnswer(self, live, processes, hops);
  const leader = processes.get(sid);
  if (leader === undefined || leader.startNs > startNs) return undefined;
  return leaderAnswer(leader, () => processes.liveFacts?.(leader.pid, leader.startNs), processes, hops);
}

/** The answer for `leader`, a session leader whose /proc facts `live` reads. */
function leaderAnswer(leader: ProcessInfo, live: FactsReader, processes: ProcessView, hops: number): EntryAnswer {
  let answers = established.get(processes);
  if (answers === undefined) established.set(processes, (answers = new Map() as Established));
  const key = `${leader.pid}:${leader.startNs}`;
  const known = answers.get(key);
  if (known !== undefined && known.executable === leader.executable) return known.answer;
  const answer = decideLeader(leader, live, processes, hops);
  if (answer !== undefined) {
    answers.delete(key);
    answers.set(key, { executable: leader.executable, answer });
    if (answers.size > MAX_ESTABLISHED) answers.delete(answers.keys().next().value!);
  }
  return answer;
}

/** Elastic's case table for a session leader, in its order. */
function decideLeader(leader: ProcessInfo, facts: FactsReader, processes: ProcessView, hops: number): EntryAnswer {
  if (leader.pid === 1 || leader.pid === 2 || leader.ppid === 2) return null;
  const live = facts();
  // Gone (its terminal cannot be read), or no longer leading the session it named.
  if (live === undefined || live.sid !== leader.pid) return undefined;
  const tty = ttyKind(live.ttyNr);
  const name = leader.name || leader.comm;
  if (tty === "tty") return { leader, type: "terminal" };
  if (tty === "console" && name === "login") return { leader, type: "console" };
  if (leader.ppid === 1) return { leader, type: "init" };
  const parent = processes.get(leader.ppid);
  if (parent === undefined || parent.startNs > leader.startNs) return undefined;
  if (!startsWithAny(name, FILTERED)) {
    const parentName = parent.name || parent.comm;
    if (tty === "pts" && parentName === "ssm-session-worker") return { leader, type: "ssm" };
    if (SSHD_NAMES.has(parentName) && !SSHD_NAMES.has(name)) return { leader, type: "sshd" };
    if (startsWithAny(parentName, CONTAINER_RUNTIMES)) return { leader, type: "container" };
  }
  // No case: the session was entered where its leader's parent's was.
  if (hops >= MAX_HOPS) return undefined;
  const parentFacts = processes.liveFacts?.(parent.pid, parent.startNs);
  const inherited = entryOf(parent.pid, parent.startNs, parent.ppid, parentFacts?.sid, parent, processes, () => parentFacts, hops + 1);
  if (inherited === undefined) return undefined;
  // A leader whose parent has no entry leader (one in init's own session) is its own, of unknown type.
  return inherited ?? { leader, type: "unknown" };
}
