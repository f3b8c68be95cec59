/**
 * SHELL-001 "Command interpreter fed from the network": a program whose stdin is fed from a
 * connection this host made, which starts programs whose output goes back to that connection
 * (a shell is what it does, issue 26). Names stay the fast path (an interpreter reading stdin
 * is reported at its exec, before any command runs); behaviour catches what names miss (a read
 * loop fed through a pipe, a renamed or rebuilt shell, the split shell). The evidence is in
 * behaviour/network-fed.ts; user documentation in docs/rules/SHELL-001.md.
 *
 * One incident, one finding: it folds by the input socket's inode as an incident key, as
 * TRC-101 and the relay rules do, so a shell one of them reports first is not reported again.
 */
import { defineRule, type Detection, type Rule, type RuleMeta } from "../engine/rule.js";
import { RELAY_THREAT } from "./relay/threat.js";
import { NetworkFedInterpreters, type BehaviourVerdict, type NetSocket, type NetworkFedOptions } from "./behaviour/network-fed.js";

export const SHELL001_META: RuleMeta = {
  id: "SHELL-001",
  name: "Command interpreter fed from the network",
  description:
    "A program reads its input from a connection this host made (directly, or through a pipe from the process holding it) and starts programs " +
    "whose output goes back to that connection: a command interpreter, whatever its name (a read loop, a renamed shell, a shell split over two connections).",
  version: "1",
  severity: "high",
  riskScore: 73,
  threat: [...RELAY_THREAT],
  source: "builtin",
};

export type Shell001Options = NetworkFedOptions;

export function createShell001Rule(options: Shell001Options = {}): Rule<"exec" | "exit" | "outbound" | "connect"> {
  const judge = new NetworkFedInterpreters(options);
  const toDetections = (verdicts: BehaviourVerdict[]): Detection[] | null => (verdicts.length > 0 ? verdicts.map(detection) : null);
  return defineRule({
    meta: SHELL001_META,
    kinds: ["exec", "exit", "outbound", "connect"],
    state: () => judge.state(),
    evaluate(event, ctx) {
      switch (event.kind) {
        case "exec":
          return toDetections(judge.onExec(event, ctx));
        case "outbound":
        case "connect":
          return toDetections(judge.onOutbound(event, ctx));
        case "exit":
          judge.onExit(event.task);
          return null;
      }
    },
  });
}

const socketFields = (s: NetSocket) => ({
  socket_inode: s.ino,
  remote: { address: s.remote.address, port: s.remote.port },
  ...(s.via !== null ? { via: { pid: s.via.pid, name: s.via.comm } } : {}),
});

function detection(v: BehaviourVerdict): Detection {
  const s = v.input;
  const fields: Record<string, unknown> = {
    event: { action: "network_fed_interpreter", severity: 73 },
    destination: { ip: s.remote.address, port: s.remote.port },
    ...(s.local !== null ? { source: { ip: s.local.address, port: s.local.port } } : {}),
    network: { direction: "egress", type: s.family === "inet6" ? "ipv6" : "ipv4", transport: s.transport ?? "tcp" },
    sockeye: {
      verdict: { reason: v.identifiedBy === "behaviour" ? "runs_commands_from_network" : "interpreter_fed_from_network", identified_by: v.identifiedBy },
      behaviour: {
        interpreter: { pid: v.interpreter.pid, name: v.interpreter.name, executable: v.interpreter.executable, family: v.interpreter.family },
        input: socketFields(v.input),
        output: socketFields(v.output),
        commands: v.commands,
      },
    },
  };
  return { fields, event: v.exec, foldKey: v.incidentKey, incidentKey: v.incidentKey };
}
