#!/usr/bin/env node
/**
 * The `sockeye` command. Findings go to stdout as JSON lines, logs to stderr; every expected
 * failure is one line on stderr and a non-zero exit, never a stack trace.
 */
import { Command, CommanderError, InvalidArgumentError } from "commander";
import { probe } from "../sensor/sensor.js";
import { SensorError } from "../sensor/errors.js";
import { runDaemon } from "./run.js";
import { formatProbe } from "./probe-format.js";
import { formatRuleStatuses } from "./rules-format.js";
import { loadRuleCatalog } from "../rules/catalog.js";
import { ElasticRuleError } from "../rules/elastic/loader.js";

const EXIT_USAGE = 2;

function integer(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
    return n;
  };
}

function fail(message: string, code = 1): never {
  process.stderr.write(`sockeye: ${message}\n`);
  process.exit(code);
}

const program = new Command("sockeye")
  .description("Linux reverse-shell detection sensor (eBPF + Node.js)")
  .version(process.env.npm_package_version ?? "0.1.0", "-V, --version")
  .showHelpAfterError("(run 'sockeye --help' for usage)")
  .exitOverride();

program
  .command("probe")
  .description("report kernel features and which program serves each capability")
  .option("--json", "print the report as JSON")
  .option("--skip <program...>", "candidate programs not to try (e.g. lsm/socket_connect)")
  .action((opts: { json?: boolean; skip?: string[] }) => {
    const report = probe(opts.skip ? { skipCandidates: opts.skip } : {});
    process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatProbe(report));
    if (report.error) process.exitCode = 1;
  });

program
  .command("run")
  .description("load the sensor and stream findings as JSON lines on stdout")
  .option("--events", "also stream every decoded kernel event (JSON lines, kind-tagged)")
  .option("--no-fold", "one finding per fd instead of one per (process, socket)")
  .option("--stdio-fd-max <n>", "highest fd treated as stdio", integer("--stdio-fd-max", 0, 1023))
  .option("--skip <program...>", "candidate programs not to try (e.g. lsm/socket_connect)")
  .option("--rules <path...>", "also load Elastic detection-rules TOML files or folders of them")
  .option("--lenient-rules", "skip a rule file that cannot run (with a warning) instead of refusing to start")
  .action(async (opts: { events?: boolean; fold: boolean; stdioFdMax?: number; skip?: string[]; rules?: string[]; lenientRules?: boolean }) => {
    await runDaemon({
      events: opts.events ?? false,
      fold: opts.fold,
      ...(opts.rules ? { rulePaths: opts.rules } : {}),
      lenient: opts.lenientRules ?? false,
      ...(opts.stdioFdMax !== undefined ? { stdioFdMax: opts.stdioFdMax } : {}),
      ...(opts.skip ? { skipCandidates: opts.skip } : {}),
    });
    // Every program is detached and stdout drained: nothing is left to wait for.
    process.exit(0);
  });

program
  .command("rules")
  .description("list the rules sockeye would run, their source, and why any would not run")
  .option("--json", "print the list as JSON")
  .option("--rules <path...>", "also load Elastic detection-rules TOML files or folders of them")
  .option("--lenient-rules", "list a rule file that cannot run as skipped instead of failing")
  .action((opts: { json?: boolean; rules?: string[]; lenientRules?: boolean }) => {
    const { statuses } = loadRuleCatalog({ ...(opts.rules ? { rulePaths: opts.rules } : {}), lenient: opts.lenientRules ?? false });
    process.stdout.write(opts.json ? `${JSON.stringify(statuses, null, 2)}\n` : formatRuleStatuses(statuses));
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // commander already printed its one line (or the help/version text).
    process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
  }
  if (err instanceof SensorError) fail(`${err.message} [${err.code}]`);
  // A rule file that cannot run is bad input, like a bad flag.
  if (err instanceof ElasticRuleError) fail(`rule file ${err.message} (fix it, or start with --lenient-rules to skip it)`, EXIT_USAGE);
  fail((err as Error).message ?? String(err));
}
