/**
 * TRC-101 "Process standard input/output over socket detected" — Tracee's stdio_over_socket
 * signature (seed ../shared/seeds/000_754545c651b038c9.txt; semantics in design.md §3,
 * user documentation in docs/rules/TRC-101.md).
 *
 * Tracee's verdicts are kept: a connect on a stdio fd, or a socket dup'ed onto one, of an
 * AF_INET/AF_INET6 socket whose port is set and not 0. Stdio is fds 0-2 as in the seed, or
 * 0 to the sensor's stdioFdMax when the rule is given it. Where design.md §3 lists Tracee's
 * gaps, this rule does better: failed connects and unknown fds (-1) never alert, fcntl dups
 * count like dup2, one shell folds into one finding per (process, remote endpoint), an
 * accepted socket is marked inbound, and inetd-style services can be allowlisted.
 */
import { defineRule, type Detection, type Rule, type RuleMeta } from "../engine/rule.js";
import { parentOf } from "../process/ecs-process.js";
import type { ConnectEvent, Endpoint, SocketDupEvent } from "../sensor/events.js";
import { DEFAULT_STDIO_FD_MAX, isStdioFd } from "../sensor/options.js";

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

type OneOrMany<T> = T | readonly T[];

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

export interface Trc101Options {
  /** Fold one process's dups of one socket into one finding (default true); false: one per fd. */
  fold?: boolean;
  /** Replaces the default allowlist. */
  allowlist?: readonly StdioAllowEntry[];
  /** Added to the allowlist (the default one, or `allowlist` when given). */
  extraAllowlist?: readonly StdioAllowEntry[];
  /** Highest fd that counts as stdio: the sensor's stdioFdMax (default 2, the seed's 0-2). */
  stdioFdMax?: number;
}

/** A non-blocking connect still in progress is an attempt that may well succeed. */
const EINPROGRESS = 115;

export function createTrc101Rule(options: Trc101Options = {}): Rule<"connect" | "socket_dup"> {
  const fold = options.fold ?? true;
  const allowlist = [...(options.allowlist ?? DEFAULT_STDIO_ALLOWLIST), ...(options.extraAllowlist ?? [])];
  const stdioFdMax = options.stdioFdMax ?? DEFAULT_STDIO_FD_MAX;
  for (const entry of allowlist) {
    const criteria = [entry.executable, entry.name, entry.parentName, entry.parentPid];
    if (criteria.every((criterion) => criterion === undefined)) {
      throw new Error(`TRC-101 allowlist entry ${JSON.stringify(entry.label)} matches nothing specific; give at least one field`);
    }
  }

  return defineRule({
    meta: TRC101_META,
    kinds: ["connect", "socket_dup"],
    evaluate(event, ctx) {
      const fd = event.kind === "connect" ? event.fd : event.newfd;
      if (!isStdioFd(fd, stdioFdMax)) return null;
      if (event.family !== "inet" && event.family !== "inet6") return null;
      const remote = event.remote;
      if (remote === null || remote.port === 0) return null;
      // result null: the hook ran before the outcome was known, so count it as an attempt.
      if (event.kind === "connect" && event.result !== null && event.result < 0 && event.result !== -EINPROGRESS) {
        return null;
      }

      const inbound = event.kind === "socket_dup" && event.origin === "accepted";
      if (inbound) {
        const task = event.task;
        const known = ctx.processes.get(task.pid, task.startNs);
        const parent = parentOf(task, ctx.processes);
        const facts: ProcessFacts = {
          executable: known?.executable ?? "",
          name: known?.name ?? task.comm,
          parentName: parent?.name || task.parentComm,
          parentPid: task.ppid,
        };
        const allowed = allowlist.find((entry) => matchesAllowEntry(entry, facts));
        if (allowed !== undefined) return { suppressed: `allowlist:${allowed.label}` };
      }

      // Built without object spreads: V8 copies `{ ...x }` on a slow path, and a flood of one
      // shell's dups is built here before it folds away.
      const fields: Record<string, unknown> = {
        event: { action: EVENT_NAME },
        // The seed's Finding, with its types: Port is a string, File descriptor an int.
        finding: { "IP address": remote.address, Port: String(remote.port), "File descriptor": fd },
        network: networkFields(event, inbound),
      };
      addEndpointFields(fields, event, remote, inbound);
      const detection: Detection = { fields };
      if (fold) detection.foldKey = `${event.task.pid}:${event.task.startNs}:${remote.address}:${remote.port}`;
      return detection;
    },
  });
}

/** TRC-101 with the default options. */
export const trc101StdioOverSocket = createTrc101Rule();

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

function networkFields(event: ConnectEvent | SocketDupEvent, inbound: boolean): Record<string, unknown> {
  const transport = TRANSPORT_BY_PROTOCOL[event.protocol];
  return {
    // ECS direction from this host's view: connect is outbound by definition; a dup'ed
    // socket is inbound only when the sensor saw accept() return it.
    direction: inbound ? "ingress" : event.kind === "connect" || event.origin === "connected" ? "egress" : "unknown",
    type: event.family === "inet6" ? "ipv6" : "ipv4",
    ...(transport !== undefined ? { transport } : {}),
  };
}

/**
 * ECS puts the connection's initiator in `source` and the responder in `destination`:
 * outbound, the remote end is the destination; inbound (accepted), the remote end is the
 * source and this host's listening address the destination.
 */
function addEndpointFields(fields: Record<string, unknown>, event: ConnectEvent | SocketDupEvent, remote: Endpoint, inbound: boolean): void {
  const remoteEnd = { ip: remote.address, port: remote.port };
  const localEnd = event.kind === "socket_dup" && event.local !== null ? { ip: event.local.address, port: event.local.port } : undefined;
  const initiator = inbound ? remoteEnd : localEnd;
  const responder = inbound ? localEnd : remoteEnd;
  if (initiator !== undefined) fields["source"] = initiator;
  if (responder !== undefined) fields["destination"] = responder;
}
