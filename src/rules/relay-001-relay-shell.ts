/**
 * RELAY-001 "Relay reverse shell": a command interpreter reading its commands from stdin,
 * whose stdin and stdout or stderr are relayed to an outbound connection by another process
 * through pipes, FIFOs, a socketpair or a pty (ncat -e, socat EXEC:, mkfifo pipelines, a
 * script's subprocess or child_process). TRC-101 sees a reverse shell only when the socket
 * itself is on the shell's stdio; here a relay sits in between. The graph and the proof that
 * the shell's stream is what reaches the socket are in relay/relay-graph.ts; user
 * documentation in docs/rules/RELAY-001.md.
 *
 * No time window and no hop limit: a relay that waits, or adds hops, is still one. A program
 * that relays shells by design (a remote-access agent) is named in `rules.relay_agents`, and
 * its verdicts are counted as suppressed under the entry's reason (`agent:<reason>`).
 *
 * One socket, one finding, across this rule and TRC-101: both fold by the socket's inode as an
 * incident key (a python dup2 of the socket followed by pty.spawn is both).
 */
import { defineRule, type Detection, type Rule, type RuleMeta } from "../engine/rule.js";
import { RELAY_THREAT } from "./relay/threat.js";
import { incidentKeyOfSocket } from "./sockets/identity.js";
import { outboundConnectionFields } from "./relay/connection-fields.js";
import { RelayGraph, type ChainLink, type RelayGraphOptions, type RelayVerdict } from "./relay/relay-graph.js";

export const RELAY001_META: RuleMeta = {
  id: "RELAY-001",
  name: "Relay reverse shell",
  description:
    "A command interpreter reads its commands from stdin while its stdin and output are relayed, through pipes, a FIFO, a socketpair or a pty, " +
    "to a process holding an outbound connection: a reverse shell behind a relay such as ncat -e, socat EXEC: or a mkfifo pipeline, however long it waited and however many hops it used.",
  version: "1",
  severity: "high",
  riskScore: 73,
  threat: [...RELAY_THREAT],
  source: "builtin",
};

export type Relay001Options = RelayGraphOptions;

export function createRelay001Rule(options: Relay001Options = {}): Rule<"exec" | "exit" | "outbound" | "connect"> {
  const graph = new RelayGraph(options);
  const toDetections = (verdicts: RelayVerdict[]): Detection[] | null =>
    verdicts.length > 0 ? verdicts.map((v) => (v.allowedAgent !== undefined ? { suppressed: `agent:${v.allowedAgent.reason}` } : detection(v))) : null;
  return defineRule({
    meta: RELAY001_META,
    kinds: ["exec", "exit", "outbound", "connect"],
    prepare(ctx) {
      graph.prepare(ctx.host);
    },
    state: () => graph.state(),
    // A shell left pending because a look at its relay's open files timed out (worker-host.ts).
    reconsider: (ctx) => toDetections(graph.reconsider(ctx.now(), ctx)),
    evaluate(event, ctx) {
      switch (event.kind) {
        case "exec":
          return toDetections(graph.onExec(event, ctx));
        case "outbound":
        case "connect":
          return toDetections(graph.onOutbound(event, ctx));
        case "exit":
          graph.onExit(event.task, event.timeMs, ctx);
          return null;
      }
    },
  });
}

function detection(v: RelayVerdict): Detection {
  const s = v.socket;
  const relay = v.input[v.input.length - 1]!;
  const chain = (links: ChainLink[]) =>
    links.map((l) => ({ pid: l.pid, name: l.name, executable: l.executable, endpoint: l.via.endpoint, fd: l.via.fd, access: l.via.access }));
  const fields: Record<string, unknown> = {
    event: { action: "relay_shell", severity: 73 },
    ...outboundConnectionFields(s),
    sockeye: {
      verdict: { identified_by: v.identifiedBy },
      relay: {
        socket_inode: s.ino,
        remote: { address: s.remote.address, port: s.remote.port },
        program: { pid: relay.pid, name: relay.name || s.comm, executable: relay.executable },
        // A socket that existed as observation began: who connected it, and when, is unknown.
        connected_by: s.beforeObservation === true || s.connectUnseen === true ? null : { pid: s.pid, comm: s.comm, start_ns: s.startNs },
        ...(s.beforeObservation === true ? { connected_before_observation: true } : {}),
        // Its connect was not seen (io_uring's IORING_OP_CONNECT): the TCP table showed it outbound.
        ...(s.connectUnseen === true ? { connect_unseen: true } : {}),
        // A UDP socket that never connected: the remote is where its first datagram went.
        ...(s.unconnected === true ? { unconnected: true } : {}),
        shell: { interpreter: v.interpreter, executable: v.shell.filename, args: v.shell.args, fds: v.shellFds },
        input_chain: chain(v.input),
        output_chain: chain(v.output),
        ...(v.outputSocket !== undefined
          ? { output_socket: { socket_inode: v.outputSocket.ino, remote: { address: v.outputSocket.remote.address, port: v.outputSocket.remote.port } } }
          : {}),
      },
    },
  };
  return { fields, event: v.shell, foldKey: incidentKeyOfSocket(s.ino), incidentKey: incidentKeyOfSocket(s.ino) };
}
