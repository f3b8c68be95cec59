/**
 * The registry of sockeye's built-in TypeScript rules. Every rule file in src/rules/ is
 * listed here and documented in docs/rules/<id>.md (a unit test checks both).
 */
import type { AnyRule } from "../engine/rule.js";
import { createTrc101Rule, type Trc101Options } from "./trc-101-stdio-over-socket.js";
import { createRelay001Rule, type Relay001Options } from "./relay-001-relay-shell.js";
import { createRelay002Rule, type Relay002Options } from "./relay-002-command-relay.js";

/** Per-rule options, for whoever builds the engine (the CLI from its config, an agent). */
export interface BuiltinRuleOptions {
  trc101?: Trc101Options;
  relay001?: Relay001Options;
  relay002?: Relay002Options;
}

/** Fresh instances of every built-in rule. */
export function builtinRules(options: BuiltinRuleOptions = {}): AnyRule[] {
  return [createTrc101Rule(options.trc101), createRelay001Rule(options.relay001), createRelay002Rule(options.relay002)];
}
