/**
 * TRC-101 "Process standard input/output over socket detected" — Tracee's stdio_over_socket
 * signature (its published semantics in docs/design.md §3,
 * user documentation in docs/rules/TRC-101.md).
 *
 * The trigger is always Tracee's: a connect on a stdio fd, or a socket dup'ed onto one, of an
 * AF_INET/AF_INET6 socket whose port is set and not 0 (stdio is fds 0-2 as in the seed, or 0
 * to the sensor's stdioFdMax when the rule is given it). Two profiles decide what to report:
 * - "tracee": every trigger, as Tracee reports it, without its known gaps (failed connects and
 *   unknown fds (-1) never alert, fcntl dups count like dup2, one process's dups of one
 *   endpoint fold into one finding, accepted sockets are marked inbound, inetd-style services
 *   can be allowlisted);
 * - "precise" (the default): a trigger becomes a finding only when a shell runs on the socket
 *   (stdio/precise-judge.ts), which keeps SSH logins, service hand-offs and /dev/tcp health checks
 *   quiet and catches a shell that starts with a socket on stdio however it got there.
 */
import { OptionError } from "../errors.js";
import { defineRule, type Detection, type Rule, type RuleContext, type RuleMeta } from "../engine/rule.js";
import { parentOf } from "../process/ecs-process.js";
import { processKey } from "../process/process-view.js";
import type { ConnectEvent, Endpoint, SocketDupEvent } from "../sensor/events.js";
import { DEFAULT_STDIO_FD_MAX, isStdioFd } from "../sensor/options.js";
import { connectMayHaveSucceeded } from "./sockets/identity.js";
import { PreciseStdioJudge, type Judgement, type PreciseOptions, type Trigger } from "./stdio/precise-judge.js";

/** Exactly as the seed gives them; kept verbatim for anyone mapping back to Tracee. */
const TRACEE_PROPERTIES = {
  Severity: 3,
  Category: "execution",
  Technique: "Unix Shell",
  id: "attack-pattern--a9d4b653-6915-42af-98b2-5758c4ceee56",
  external_id: "T1059.004",
} as const;
const EVENT_NAME = "stdio_over_socket";

export const TRC101_META: RuleMeta = {
  id: "TRC-101",
  name: "Process standard input/output over socket detected",
  description:
    "This behavior hints at a Reverse Shell attack, where an interactive shell is activated from a target machine back to the attacker's machine.",
  version: "2",
  // Tracee's severity scale is 0 info, 1 low, 2 medium, 3 high, 4 critical, so its 3 is
  // ECS/Elastic "high". The seed gives no risk score, so none is invented.
  severity: "high",
  // The seed names the category (execution = MITRE tactic TA0002), the technique "Unix Shell"
  // and its external_id T1059.004, a sub-technique of T1059.
  threat: [
    {
      framework: "MITRE ATT&CK",
      tactic: { id: "TA0002", name: "Execution", reference: "https://attack.mitre.org/tactics/TA0002/" },
      technique: [
        {
          id: "T1059",
          name: "Command and Scripting Interpreter",
          reference: "https://attack.mitre.org/techniques/T1059/",
          subtechnique: [
            {
              id: TRACEE_PROPERTIES.external_id,
              name: TRACEE_PROPERTIES.Technique,
              reference: "https://attack.mitre.org/techniques/T1059/004/",
            },
          ],
        },
      ],
    },
  ],
  source: "builtin",
  extra: { EventName: EVENT_NAME, Properties: TRACEE_PROPERTIES },
};

export type OneOrMany<T> = T | readonly T[];

/**
 * One allowlist entry: an accepted (inbound) socket put on stdio by a matching process is
 * suppressed (counted under `allowlist:<label>`, no finding). Every field given must match;
 * an entry must give at least one. Process facts come from the process table, falling back
 * to the event's comm / parent comm, and an unknown executable never matches.
 */
export interface StdioAllowEntry {
  label: string;
  /** Absolute path of the process's executable. */
  executable?: OneOrMany<string>;
  /** Base name of the executable (comm when the table does not know the process). */
  name?: OneOrMany<string>;
  parentName?: OneOrMany<string>;
  parentPid?: OneOrMany<number>;
}

/**
 * inetd and xinetd fork, dup2 the accepted socket onto 0-2 in the child, then exec the
 * service, so the dup is made by a process still running inetd's own binary. systemd's
 * `Accept=yes` with `StandardInput=socket` does the same in a child of pid 1 still running
 * systemd. Matching the executable (not just the parent) keeps an orphaned bind shell,
 * which is also a child of pid 1, alerting.
 */
export const DEFAULT_STDIO_ALLOWLIST: readonly StdioAllowEntry[] = [
  { label: "inetd", executable: ["/usr/sbin/inetd", "/sbin/inetd"] },
  { label: "xinetd", executable: ["/usr/sbin/xinetd", "/sbin/xinetd"] },
  {
    label: "systemd-socket-activation",
    executable: ["/usr/lib/systemd/systemd", "/lib/systemd/systemd"],
    parentPid: 1,
    parentName: "systemd",
  },
];

export const TRC101_PROFILES = ["precise", "tracee"] as const;
export type Trc101Profile = (typeof TRC101_PROFILES)[number];
export const DEFAULT_TRC101_PROFILE: Trc101Profile = "precise";

export interface Trc101Options {
  /** "precise" (default): report when a shell runs on the socket; "tracee": every trigger. */
  profile?: Trc101Profile;
  /** Fold one process's dups of one socket into one finding (default true); false: one per fd. */
  fold?: boolean;
  /** Settings of the precise profile (bounds; interpreter recognition by content). */
  precise?: PreciseOptions;
  /** Replaces the default allowlist. */
  allowlist?: readonly StdioAllowEntry[];
  /** Added to the allowlist (the default one, or `allowlist` when given). */
  extraAllowlist?: readonly StdioAllowEntry[];
  /** Highest fd that counts as stdio: the sensor's stdioFdMax (default 2, the seed's 0-2). */
  stdioFdMax?: number;
}

export function createTrc101Rule(options: Trc101Options = {}): Rule<"connect" | "socket_dup"> | Rule<"connect" | "socket_dup" | "exec" | "exit"> {
  const fold = options.fold ?? true;
  const profile = options.profile ?? DEFAULT_TRC101_PROFILE;
  const allowlist = [...(options.allowlist ?? DEFAULT_STDIO_ALLOWLIST), ...(options.extraAllowlist ?? [])];
  const stdioFdMax = options.stdioFdMax ?? DEFAULT_STDIO_FD_MAX;
  for (const entry of allowlist) {
    const criteria = [entry.executable, entry.name, entry.parentName, entry.parentPid];
    if (criteria.every((criterion) => criterion === undefined)) {
      throw new OptionError(`TRC-101 allowlist entry ${JSON.stringify(entry.label)} matches nothing specific; give at least one field`);
    }
  }
  const allowed = (event: Trigger, ctx: RuleContext): Detection | null => {
    if (event.kind !== "socket_dup" || event.origin !== "accepted") return null;
    const task = event.task;
    const known = ctx.processes.get(task.pid, task.startNs);
    const parent = parentOf(task, ctx.processes);
    const facts: ProcessFacts = {
      executable: known?.executable ?? "",
      name: known?.name ?? task.comm,
      parentName: parent?.name || task.parentComm,
      parentPid: task.ppid,
    };
    const entry = allowlist.find((e) => matchesAllowEntry(e, facts));
    return entry !== undefined ? { suppressed: `allowlist:${entry.label}` } : null;
  };

  if (profile === "tracee") {
    return defineRule({
      meta: TRC101_META,
      kinds: ["connect", "socket_dup"],
      evaluate(event, ctx) {
        const fd = triggerFd(event, stdioFdMax);
        if (fd === undefined) return null;
        const remote = event.remote!;
        const inbound = event.kind === "socket_dup" && event.origin === "accepted";
        const suppressed = inbound ? allowed(event, ctx) : null;
        if (suppressed !== null) return suppressed;
        // Built without object spreads: V8 copies `{ ...x }` on a slow path, and a flood of one
        // shell's dups folds away after this is built.
        const fields: Record<string, unknown> = {
          event: { action: EVENT_NAME },
          // The seed's Finding, with its types: Port is a string, File descriptor an int.
          finding: { "IP address": remote.address, Port: String(remote.port), "File descriptor": fd },
          network: networkFields(event.family, event.protocol, inbound ? "ingress" : event.kind === "connect" || event.origin === "connected" ? "egress" : "unknown"),
          sockeye: { profile },
        };
        addEndpointFields(fields, remote, event.kind === "socket_dup" ? event.local : null, inbound);
        const detection: Detection = { fields };
        if (fold) detection.foldKey = `${processKey(event.task)}:${remote.address}:${remote.port}`;
        return detection;
      },
    });
  }

  const judge = new PreciseStdioJudge(options.precise);
  const toDetections = (results: ReturnType<PreciseStdioJudge["onExec"]>, evaluated: { timeMs: number }): Detection[] | null =>
    results.length === 0 ? null : results.map((r) => (typeof r === "string" ? { suppressed: r } : preciseDetection(r, evaluated, fold)));
  return defineRule({
    meta: TRC101_META,
    kinds: ["connect", "socket_dup", "exec", "exit"],
    state: () => judge.state(),
    prepare: (ctx) => judge.prepare(ctx.host),
    evaluate(event, ctx) {
      switch (event.kind) {
        case "connect":
        case "socket_dup": {
          const fd = triggerFd(event, stdioFdMax);
          if (fd === undefined) return null;
          const suppressed = allowed(event, ctx);
          if (suppressed !== null) return suppressed;
          return toDetections(judge.onTrigger(event, fd, ctx), event);
        }
        case "exec":
          return toDetections(judge.onExec(event, ctx), event);
        case "exit":
          return toDetections(judge.onExit(event), event);
      }
    },
  });
}

/** Tracee's trigger: the stdio fd of an inet connect or dup with a port, else undefined. */
function triggerFd(event: ConnectEvent | SocketDupEvent, stdioFdMax: number): number | undefined {
  const fd = event.kind === "connect" ? event.fd : event.newfd;
  if (!isStdioFd(fd, stdioFdMax)) return undefined;
  if (event.family !== "inet" && event.family !== "inet6") return undefined;
  const remote = event.remote;
  if (remote === null || remote.port === 0) return undefined;
  // result null: the hook ran before the outcome was known, so count it as an attempt.
  if (event.kind === "connect" && !connectMayHaveSucceeded(event)) return undefined;
  return fd;
}

/** ECS event.severity: a bind shell (a listener handing out a shell) ranks above a reverse shell. */
const SEVERITY_BY_VERDICT: Readonly<Record<Judgement["verdict"], number>> = {
  interpreter_stdio_on_socket: 73,
  shell_on_socket: 73,
  runs_commands_read_from_socket: 73,
  bind_shell: 99,
  held_past_bound: 47,
  legacy_capture: 47,
};

function preciseDetection(j: Judgement, evaluated: { timeMs: number }, fold: boolean): Detection {
  const inbound = j.origin === "accepted";
  const fields: Record<string, unknown> = {
    event: { action: EVENT_NAME, severity: SEVERITY_BY_VERDICT[j.verdict] },
    finding: { "IP address": j.remote.address, Port: String(j.remote.port), "File descriptor": j.fds[0] ?? -1 },
    network: networkFields(j.family, j.transport === "tcp" ? 6 : j.transport === "udp" ? 17 : -1, inbound ? "ingress" : "egress"),
    sockeye: {
      profile: "precise",
      verdict: {
        reason: j.verdict,
        socket_inode: j.socketIno,
        stdio_fds: j.fds,
        origin: j.origin,
        ...(j.program !== null ? {
          identified_by: j.program.identifiedBy,
          program: { executable: j.program.executable, interpreter: j.program.interpreter, reads_commands_from_stdin: j.program.readsCommandsFromStdin },
        } : {}),
      },
    },
  };
  addEndpointFields(fields, j.remote, j.local, inbound);
  const detection: Detection = { fields };
  if (j.event !== evaluated) detection.event = j.event;
  // One socket, one finding: every later process and fd on the same socket folds into it.
  detection.foldKey = fold ? j.socketKey : `${j.socketKey}:${j.event.task.pid}:${j.fds.join(",")}`;
  // The same incident as a relay shell on this socket (RELAY-001 uses the same key).
  if (fold) detection.incidentKey = j.socketKey;
  return detection;
}

interface ProcessFacts {
  executable: string;
  name: string;
  parentName: string;
  parentPid: number;
}

function matchesAllowEntry(entry: StdioAllowEntry, facts: ProcessFacts): boolean {
  return (
    matchesOne(entry.executable, facts.executable === "" ? undefined : facts.executable) &&
    matchesOne(entry.name, facts.name) &&
    matchesOne(entry.parentName, facts.parentName) &&
    matchesOne(entry.parentPid, facts.parentPid)
  );
}

/** An absent criterion matches anything; an unknown fact matches no criterion. */
function matchesOne<T>(criterion: OneOrMany<T> | undefined, fact: T | undefined): boolean {
  if (criterion === undefined) return true;
  if (fact === undefined) return false;
  return Array.isArray(criterion) ? criterion.includes(fact) : criterion === fact;
}

const TRANSPORT_BY_PROTOCOL: Readonly<Record<number, string>> = { 6: "tcp", 17: "udp", 132: "sctp" };

/**
 * ECS direction from this host's view: connect is outbound by definition; a dup'ed socket is
 * inbound only when the sensor saw accept() return it.
 */
function networkFields(family: string, protocol: number, direction: "ingress" | "egress" | "unknown"): Record<string, unknown> {
  const transport = TRANSPORT_BY_PROTOCOL[protocol];
  return {
    direction,
    type: family === "inet6" ? "ipv6" : "ipv4",
    ...(transport !== undefined ? { transport } : {}),
  };
}

/**
 * ECS puts the connection's initiator in `source` and the responder in `destination`:
 * outbound, the remote end is the destination; inbound (accepted), the remote end is the
 * source and this host's listening address the destination.
 */
function addEndpointFields(fields: Record<string, unknown>, remote: Endpoint, local: Endpoint | null, inbound: boolean): void {
  const remoteEnd = { ip: remote.address, port: remote.port };
  const localEnd = local !== null ? { ip: local.address, port: local.port } : undefined;
  const initiator = inbound ? remoteEnd : localEnd;
  const responder = inbound ? localEnd : remoteEnd;
  if (initiator !== undefined) fields["source"] = initiator;
  if (responder !== undefined) fields["destination"] = responder;
}
