/**
 * The registry of sockeye's built-in TypeScript rules. Every rule file in src/rules/ is
 * listed here and documented in docs/rules/<id>.md (a unit test checks both).
 */
import type { AnyRule } from "../engine/rule.js";
import { createTrc101Rule, type Trc101Options } from "./trc-101-stdio-over-socket.js";
import { createRelay001Rule, type Relay001Options } from "./relay-001-relay-shell.js";
import { createRelay002Rule, type Relay002Options } from "./relay-002-command-relay.js";
import { createShell001Rule, type Shell001Options } from "./shell-001-network-fed-interpreter.js";

/** Per-rule options, for whoever builds the engine (the CLI from its config, an agent). */
export interface BuiltinRuleOptions {
  trc101?: Trc101Options;
  relay001?: Relay001Options;
  relay002?: Relay002Options;
  shell001?: Shell001Options;
  /**
   * Also run RELAY-002, the command relay. Off by default: CI runners, configuration-management
   * and monitoring agents have its shape by design (docs/rules/RELAY-002.md), and a normal host
   * must stay quiet; turn it on where no such agent runs, or to hunt.
   */
  commandRelay?: boolean;
}

/** The opt-in rules, and why they are off unless asked for (`sockeye rules` says so). */
export const OPT_IN_RULES: readonly { id: string; reason: string }[] = [
  { id: "RELAY-002", reason: "off by default: build and management agents run commands this way by design; rules.command_relay = true (or --command-relay) turns it on" },
];

/** Fresh instances of every built-in rule that runs with these options. */
export function builtinRules(options: BuiltinRuleOptions = {}): AnyRule[] {
  const rules: AnyRule[] = [createTrc101Rule(options.trc101), createRelay001Rule(options.relay001), createShell001Rule(options.shell001)];
  if (options.commandRelay === true) rules.push(createRelay002Rule(options.relay002));
  return rules;
}
