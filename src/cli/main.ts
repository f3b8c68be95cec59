#!/usr/bin/env node
/**
 * The `sockeye` command. Findings go to stdout (and the configured outputs), logs to stderr;
 * every expected failure is one line on stderr and a non-zero exit, never a stack trace:
 * 2 for bad input (flags, config, rule files, captures), 1 for what the host refused
 * (privileges, kernel features, an output that cannot be opened, a second daemon).
 */
import { readFileSync } from "node:fs";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { probe } from "../sensor/sensor.js";
import { STDIO_FD_MAX_LIMIT } from "../sensor/options.js";
import { EXIT_BAD_INPUT, EXIT_REFUSED, SockeyeError } from "../errors.js";
import { resolveConfig } from "../config/config.js";
import { loadConfiguredRules } from "../config/rules.js";
import { enforceModeOfFlag } from "../enforce/config.js";
import { configFromFlags, decimalInteger, type RuleFlags, type RunFlags } from "./flags.js";
import { TRC101_PROFILES } from "../rules/trc-101-stdio-over-socket.js";
// Each command's own modules are imported when it runs: the daemon lives for months and
// should not hold the replay's capture reader (and its schema) in its heap.

/**
 * How the command words an error when its message alone does not say what to do next, by
 * error class; any other SockeyeError prints its message.
 */
const ERROR_LINES: Readonly<Record<string, (error: SockeyeError) => string>> = {
  // The code names the failure for a search or a bug report; the message is the kernel's side.
  SensorError: (error) => `${error.message} [${error.code}]`,
  ElasticRuleError: (error) => `rule file ${error.message} (fix it, or start with --lenient-rules to skip it)`,
  CaptureLineError: (error) => `${error.message} (or replay without --strict to count such lines)`,
};

function packageVersion(): string {
  const manifest = new URL("../../package.json", import.meta.url);
  return (JSON.parse(readFileSync(manifest, "utf8")) as { version: string }).version;
}

function fail(message: string, code: number = EXIT_REFUSED): never {
  process.stderr.write(`sockeye: ${message}\n`);
  process.exit(code);
}

/** The flags shared by `run`, `rules` and `replay` that choose the rules. */
function withRuleFlags(command: Command): Command {
  return command
    .option("-c, --config <file>", "TOML configuration file (see config/sockeye.example.toml); flags win over it")
    // One path per --rules, repeated for more: a variadic option would take `replay`'s capture too.
    .option("--rules <path>", "also load an Elastic detection-rules TOML file or a folder of them (repeat for more)", (path: string, earlier?: string[]) => [...(earlier ?? []), path])
    .option("--lenient-rules", "skip a rule file that cannot run (with a warning) instead of refusing to start")
    .addOption(
      new Option("--profile <profile>", "TRC-101: precise (report when a shell runs on the socket) or tracee (every trigger, as Tracee)").choices([...TRC101_PROFILES]),
    )
    .option("--command-relay", "also run RELAY-002, the command relay (off by default: build agents have its shape)");
}

const program = new Command("sockeye")
  .description("Linux reverse-shell detection sensor (eBPF + Node.js)")
  .version(packageVersion(), "-V, --version")
  // Every usage error is one line: commander's message with the hint at its end.
  .configureOutput({ outputError: (message, write) => write(`${message.trimEnd()} (run 'sockeye --help' for usage)\n`) })
  .exitOverride();

program
  .command("probe")
  .description("report kernel features and which program serves each capability")
  .option("--json", "print the report as JSON")
  .option("--skip <program...>", "candidate programs not to try (e.g. lsm/socket_connect)")
  .option("--compat-syscalls", "also load the ia32-syscall program (sensor.compat_syscalls), to see that this kernel takes it")
  .option("--enforce", "also load the enforcing programs: which kernel path (LSM deny, signal) this kernel offers, and why not")
  .action(async (opts: { json?: boolean; skip?: string[]; compatSyscalls?: boolean; enforce?: boolean }) => {
    const { formatProbe } = await import("./probe-format.js");
    const report = probe({
      ...(opts.skip ? { skipCandidates: opts.skip } : {}),
      ...(opts.compatSyscalls ? { compatSyscalls: true } : {}),
      // Loaded with no interpreter listed: the programs are proven, nothing can be stopped.
      ...(opts.enforce ? { enforce: true } : {}),
    });
    process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatProbe(report));
    if (report.error) process.exitCode = 1;
  });

withRuleFlags(
  program
    .command("run")
    .description("the daemon: load the sensor and deliver findings (stdout, file, webhook) until SIGINT/SIGTERM; SIGHUP reloads"),
)
  .option("--events", "also stream every decoded kernel event to stdout (JSON lines, kind-tagged)")
  .option("--no-fold", "one finding per fd instead of one per (process, socket)")
  .option("--stdio-fd-max <n>", "highest fd treated as stdio", decimalInteger("--stdio-fd-max", 0, STDIO_FD_MAX_LIMIT))
  .option("--skip <program...>", "candidate programs not to try (e.g. lsm/socket_connect)")
  .addOption(new Option("--format <format>", "stdout format (auto: json unless stdout is a terminal)").choices(["auto", "json", "pretty", "none"]))
  .option("--output-file <path>", "also append findings as JSON lines to this file (rotated by size)")
  .option("--webhook <url>", "also POST findings in batches to this http(s) URL")
  .option("--prometheus <host:port>", "serve Prometheus metrics at http://host:port/metrics")
  .option("--stats-interval <seconds>", "seconds between stats lines on stderr (0: none)", decimalInteger("--stats-interval", 0, 86_400))
  .option("--capture <file>", "also record every kernel event to this file, for `sockeye replay`")
  .option("--enforce [mode]", "stop reverse shells (on), or only say what would be stopped (dry-run); see docs/enforcement.md", (value: string) => {
    try {
      enforceModeOfFlag(value);
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message); // a usage error, one line
    }
    return value;
  })
  .action(async (flags: RunFlags, command: Command) => {
    const { runDaemon } = await import("./run.js");
    await runDaemon({
      ...(flags.config !== undefined ? { configPath: flags.config } : {}),
      flags: configFromFlags(flags, (name) => command.getOptionValueSource(name) === "cli"),
      ...(flags.capture !== undefined ? { capturePath: flags.capture } : {}),
    });
    // Every program is detached and every output flushed: nothing is left to wait for.
    process.exit(0);
  });

withRuleFlags(program.command("rules").description("list the rules sockeye would run, their source, and why any would not run"))
  .option("--json", "print the list as JSON")
  .action(async (flags: RuleFlags & { json?: boolean }) => {
    const { formatRuleStatuses } = await import("./rules-format.js");
    const config = resolveConfig(flags.config, configFromFlags(flags, () => false));
    const { statuses } = loadConfiguredRules(config);
    process.stdout.write(flags.json ? `${JSON.stringify(statuses, null, 2)}\n` : formatRuleStatuses(statuses));
  });

withRuleFlags(program.command("replay").description("run the rules over a recorded capture (sockeye run --capture) and print the findings as JSON lines"))
  .argument("<capture>", "capture file (one JSON event per line)")
  .option("--strict", "stop at the first malformed line instead of counting it")
  .action(async (capture: string, flags: RuleFlags & { strict?: boolean }) => {
    const { replayCommand } = await import("./replay.js");
    const config = resolveConfig(flags.config, configFromFlags(flags, () => false));
    process.exitCode = await replayCommand(capture, config, { strict: flags.strict ?? false });
  });

program
  .command("status")
  .description("ask the running daemon for its health: ready, degraded (and why) or not ready")
  .option("--json", "print the report as JSON")
  .addOption(new Option("--probe <kind>", "exit status for a probe: live (the daemon answers) or ready (every hook attached, a batch processed)").choices(["live", "ready"]))
  .action(async (opts: { json?: boolean; probe?: "live" | "ready" }) => {
    const { queryStatus } = await import("../service/status-socket.js");
    const report = await queryStatus();
    process.stdout.write(opts.json ? `${JSON.stringify(report)}\n` : `${report.status.replace("_", " ")}${report.reasons.length > 0 ? `: ${report.reasons.join("; ")}` : ""}\n`);
    // Degraded is still ready: a busy node must not stall a rollout (the reasons say what).
    if (opts.probe !== "live" && !report.ready) process.exitCode = 1;
  });

program
  .command("version")
  .description("print sockeye's version")
  .action(() => {
    process.stdout.write(`${packageVersion()}\n`);
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // commander already printed its one line (or the help/version text).
    process.exit(err.exitCode === 0 ? 0 : EXIT_BAD_INPUT);
  }
  if (err instanceof SockeyeError) fail(ERROR_LINES[err.name]?.(err) ?? err.message, err.exitStatus);
  fail((err as Error).message ?? String(err));
}
