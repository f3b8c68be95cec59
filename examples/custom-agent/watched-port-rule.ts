/**
 * A user's own rule: alert when a process connects to a port on a watch list (say, an
 * internal Redis or a known C2 port). Written against sockeye's public rule API exactly as
 * sockeye's built-in rules are.
 */
import { defineRule } from "sockeye";

export function createWatchedPortRule(watchedPorts: ReadonlySet<number>) {
  return defineRule({
    meta: {
      id: "AGENT-watched-port",
      name: "Connection to a watched port",
      description: "A process connected to a port on this agent's watch list.",
      version: "1",
      severity: "medium",
      riskScore: 47,
      threat: [],
      source: "examples/custom-agent",
    },
    kinds: ["connect"],
    evaluate(event, ctx) {
      if (event.remote === null || !watchedPorts.has(event.remote.port)) return null;
      // Failed attempts are noise for this agent; null means the hook could not know yet.
      if (event.result !== null && event.result < 0) return null;
      const parent = ctx.processes.ancestors(event.task.pid, 1)[0];
      return {
        fields: {
          destination: { ip: event.remote.address, port: event.remote.port },
          labels: { launched_by: parent?.name ?? event.task.parentComm },
        },
        // One finding per process and port, however often it reconnects.
        foldKey: `${event.task.pid}:${event.task.startNs}:${event.remote.port}`,
      };
    },
  });
}
