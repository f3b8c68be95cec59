/**
 * The command line's share of the configuration: the flags given, as a ConfigInput laid over
 * the config file (config.ts). A flag left out leaves the file's value alone, which is why
 * `given` tells a typed --no-fold from commander's default.
 */
import { InvalidArgumentError } from "commander";
import type { ConfigInput } from "../config/config.js";
import { enforceModeOfFlag } from "../enforce/config.js";

export interface RuleFlags {
  config?: string;
  rules?: string[];
  lenientRules?: boolean;
  profile?: "precise" | "tracee";
  commandRelay?: boolean;
}

export interface RunFlags extends RuleFlags {
  events?: boolean;
  fold?: boolean;
  stdioFdMax?: number;
  skip?: string[];
  format?: "auto" | "json" | "pretty" | "none";
  outputFile?: string;
  webhook?: string;
  prometheus?: string;
  statsInterval?: number;
  capture?: string;
  /** --enforce (on), --enforce=dry-run|on|off. */
  enforce?: string | true;
}

/** Only what was given on the command line: absent flags leave the file's values alone. */
export function configFromFlags(flags: RunFlags, given: (name: string) => boolean): ConfigInput {
  const input: Record<string, Record<string, unknown>> = { sensor: {}, rules: {}, output: {}, metrics: {}, enforce: {} };
  if (flags.stdioFdMax !== undefined) input["sensor"]!["stdio_fd_max"] = flags.stdioFdMax;
  if (flags.skip !== undefined) input["sensor"]!["skip_programs"] = flags.skip;
  if (flags.rules !== undefined) input["rules"]!["paths"] = flags.rules;
  if (flags.lenientRules) input["rules"]!["lenient"] = true;
  if (flags.profile !== undefined) input["rules"]!["profile"] = flags.profile;
  if (flags.commandRelay) input["rules"]!["command_relay"] = true;
  if (given("fold")) input["rules"]!["fold"] = flags.fold;
  if (flags.events) input["output"]!["events"] = true;
  if (flags.format !== undefined) input["output"]!["stdout"] = flags.format;
  if (flags.outputFile !== undefined) input["output"]!["file"] = { path: flags.outputFile };
  if (flags.webhook !== undefined) input["output"]!["webhook"] = { url: flags.webhook };
  if (flags.prometheus !== undefined) input["metrics"]!["prometheus_listen"] = flags.prometheus;
  if (flags.statsInterval !== undefined) input["metrics"]!["stats_interval_s"] = flags.statsInterval;
  if (flags.enforce !== undefined) {
    try {
      input["enforce"]!["mode"] = enforceModeOfFlag(flags.enforce);
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message);
    }
  }
  for (const key of Object.keys(input)) if (Object.keys(input[key]!).length === 0) delete input[key];
  return input;
}

/**
 * A commander parser for a numeric flag: decimal digits only, within [min, max]. Number()
 * alone would read "" as 0 and take "0x10" and "1e2".
 */
export function decimalInteger(name: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const n = /^\d{1,16}$/.test(value) ? Number(value) : Number.NaN;
    if (!(n >= min && n <= max)) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
    return n;
  };
}
