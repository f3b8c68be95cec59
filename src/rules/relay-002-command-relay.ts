/**
 * RELAY-002 "Command relay": a process holding an outbound TCP connection keeps running
 * commands whose output it reads, while the connection stays open: `sh -c CMD`, or the program
 * itself where the language runs a plain command line without a shell (ruby's IO.popen, perl's
 * backticks). gawk's `/inet/tcp` with `cmd |& getline`, php's shell_exec, python's subprocess,
 * perl and ruby loops. No shell reads commands from stdin here, so RELAY-001 has no candidate;
 * the relay process itself is the interpreter of the remote side's commands.
 *
 * Build and configuration agents (CI runners, config-management and monitoring agents that
 * poll a server over a kept-alive connection and run jobs through `sh -c`) have the same
 * shape by design, and nothing the sensor records tells them apart (measured:
 * test/kernel/command-loops.test.ts; docs/rules/RELAY-002.md): the rule is opt-in and medium.
 *
 * Cost: an exec whose stdout is a pipe, unix socket or terminal is looked at only when its
 * parent connected an outbound socket the sensor saw; then the parent's open files are looked
 * at once.
 */
import { defineRule, type Detection, type Rule, type RuleContext, type RuleMeta } from "../engine/rule.js";
import { RELAY_THREAT } from "./relay/threat.js";
import { outboundConnectionFields } from "./relay/connection-fields.js";
import type { ExecEvent, StdioFd } from "../sensor/events.js";
import { incidentKeyOfSocket } from "./sockets/identity.js";
import { OutboundRegistry, outboundSocketOf, type OutboundSocket } from "./sockets/outbound-registry.js";
import { identifyProgram, readsCommandsFromStdin } from "./stdio/interpreters.js";
import { holdingsNow, ptyMasterKey, socketKey, stdioHolding, type Holding } from "./relay/holdings.js";

export const RELAY002_META: RuleMeta = {
  id: "RELAY-002",
  name: "Command relay",
  description:
    "A process holding an outbound connection keeps running commands (sh -c, or a plain command line run directly) whose output it reads, over the same connection: " +
    "a command relay such as gawk /inet/tcp, php shell_exec or a perl, ruby or python popen loop. Build and configuration agents that poll a server and run jobs have the same shape.",
  version: "2",
  severity: "medium",
  riskScore: 47,
  threat: [...RELAY_THREAT],
  source: "builtin",
};

export interface Relay002Options {
  /** Shell commands over one held connection before it is a relay. */
  minCommands?: number;
  /** Longest gap between two of those commands (event time). */
  gapMs?: number;
  /** Outbound sockets remembered (oldest forgotten first). */
  maxSockets?: number;
  /** How long (event time) a connection with no new command is remembered. */
  maxAgeMs?: number;
}

interface Held extends OutboundSocket {
  /** The `sh -c` children seen while it was held, oldest first. */
  commands: { pid: number; startNs: number; args: string[]; timeMs: number }[];
  reported: boolean;
}

const DEFAULTS = { minCommands: 2, gapMs: 10 * 60_000, maxSockets: 16_384, maxAgeMs: 60 * 60_000 } as const;

/** A shell given its commands as an argument (`sh -c CMD`, `bash -lc CMD`), not a script file. */
function runsCommandString(args: readonly string[]): boolean {
  for (let i = 1; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--" || !/^[-+]/.test(arg)) return false;
    if (arg.startsWith("--")) continue; // --login, --norc, …
    if (arg === "-o" || arg === "+o" || arg === "-O" || arg === "+O") {
      i++; // an option name follows
      continue;
    }
    if (arg.startsWith("-") && arg.slice(1).includes("c")) return true;
  }
  return false;
}

export function createRelay002Rule(options: Relay002Options = {}): Rule<"exec" | "exit" | "outbound" | "connect"> {
  const opts = { ...DEFAULTS, ...options };
  const sockets = new OutboundRegistry<Held>({ maxSockets: opts.maxSockets, maxAgeMs: opts.maxAgeMs });
  let incomplete = 0;
  const onExec = (event: ExecEvent, ctx: RuleContext): Detection | null => {
    // The exec replaces the process: what it connected before is no longer its program's.
    for (const s of sockets.ofPid(event.task.pid)) sockets.forget(s.ino);
    const parentSockets = sockets.ofPid(event.task.ppid);
    if (parentSockets.length === 0 || event.stdio === null) return null;
    const out = stdioHolding(1, event.stdio[1]);
    if (out === undefined) return null;
    const program = identifyProgram(event.filename, event.args);
    // A command is `sh -c CMD` (the interpreter's own argv: `busybox sh -c CMD`'s options follow
    // the applet, not argv[0]), or a program run directly: ruby's IO.popen and perl's backticks
    // exec a line with no shell metacharacters themselves (revshells.com's "Ruby no sh"). A shell
    // running a script file, or any interpreter reading its commands from stdin, is not one:
    // a shell behind the relay's pipes is RELAY-001's.
    if (program.family === "shell" ? !runsCommandString(program.args) : program.family !== undefined && readsCommandsFromStdin(program.family, program.args)) return null;
    const first = parentSockets[0]!;
    const now = holdingsNow(ctx.host, first.pid, first.startNs);
    if (now === undefined) return null;
    if (now.incomplete) incomplete++;
    const held = now.holdings;
    if (!readsOutput(event.stdio[1], out.key, held)) return null;
    let hit: Held | undefined;
    for (const s of parentSockets) {
      if (!held.some((h) => h.key === socketKey(s.ino))) continue;
      sockets.touch(s.ino, event.timeMs);
      const last = s.commands[s.commands.length - 1];
      if (last !== undefined && event.timeMs - last.timeMs > opts.gapMs) s.commands.length = 0;
      // One command, one count: `sh -c id` execs id in its own process (dash and bash do, for
      // a single command), which is still the first command, not a second.
      if (last !== undefined && last.pid === event.task.pid && last.startNs === event.task.startNs) s.commands.pop();
      s.commands.push({ pid: event.task.pid, startNs: event.task.startNs, args: event.args, timeMs: event.timeMs });
      if (s.commands.length > opts.minCommands) s.commands.shift();
      if (!s.reported && s.commands.length >= opts.minCommands) hit = s;
    }
    if (hit === undefined) return null;
    hit.reported = true;
    return detection(hit);
  };

  return defineRule({
    meta: RELAY002_META,
    kinds: ["exec", "exit", "outbound", "connect"],
    state: () => {
      let pending = 0;
      for (const s of sockets.values()) if (!s.reported && s.commands.length > 0) pending++;
      return { held: sockets.size, pending, indexed: 0, evicted: sockets.evicted, expired: sockets.expired, incomplete, abandoned: 0 };
    },
    evaluate(event, ctx) {
      sockets.expire(event.timeMs);
      switch (event.kind) {
        case "outbound":
        case "connect": {
          const socket = outboundSocketOf(event);
          if (socket !== undefined) sockets.remember({ ...socket, commands: [], reported: false }, event.timeMs);
          return null;
        }
        case "exec": {
          const d = onExec(event, ctx);
          if (d === null) return null;
          const info = ctx.processes.get(event.task.ppid);
          const relay = d.fields!.sockeye as { command_relay: { program: Record<string, unknown> } };
          relay.command_relay.program = { pid: event.task.ppid, name: info?.name ?? event.task.parentComm, executable: info?.executable ?? "" };
          return d;
        }
        case "exit":
          for (const s of sockets.ofPid(event.task.pid)) if (s.startNs === event.task.startNs) sockets.forget(s.ino);
          return null;
      }
    },
  });
}

/**
 * Whether the parent reads what the child writes on stdout: it holds the far end for reading
 * (a pipe's read end, a socketpair's peer, a pty's master), or no longer holds the child's end
 * at all (it read to the end and closed it before this look). Holding the very same end, a
 * pipe for writing, a unix socket itself or the same terminal, means the child only inherited
 * the parent's own output (a service's journal stream, a user's terminal).
 */
function readsOutput(stdout: StdioFd, key: string, parent: Holding[]): boolean {
  switch (stdout.kind) {
    case "pipe": {
      const end = parent.find((h) => h.key === key);
      return end === undefined || end.access !== "write";
    }
    case "unix":
      return !parent.some((h) => h.key === key);
    case "tty":
      return parent.some((h) => h.key === ptyMasterKey(stdout.ttyIndex));
    default:
      return false;
  }
}

function detection(s: Held): Detection {
  return {
    fields: {
      event: { action: "command_relay", severity: 47 },
      ...outboundConnectionFields(s),
      sockeye: {
        command_relay: {
          socket_inode: s.ino,
          remote: { address: s.remote.address, port: s.remote.port },
          program: {},
          commands: s.commands.map((c) => ({ pid: c.pid, args: c.args })),
        },
      },
    },
    foldKey: incidentKeyOfSocket(s.ino),
    incidentKey: incidentKeyOfSocket(s.ino),
  };
}
