// `sockeye run` started for a measurement or a kernel test (test/kernel/harness.ts re-exports
// it): stdout lines stamped on arrival (findings, when --format json), stderr kept, `ready`
// once the daemon logs "sensor ready", and the figures its `stopped` line carries (event-loop
// lag) read in one place. Run from the repository's root, on a built tree.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";

export const CLI = "dist/cli/main.js";

/**
 * @param {string[]} args after `run`
 * @param {NodeJS.ProcessEnv} [env]
 */
export function startDaemon(args = [], env = process.env) {
  const child = spawn(process.execPath, [CLI, "run", ...args], { stdio: ["ignore", "pipe", "pipe"], env });
  /** @type {{ receivedMs: number; line: string }[]} */
  const lines = [];
  let stdout = "";
  let stderr = "";
  createInterface({ input: child.stdout }).on("line", (line) => {
    lines.push({ receivedMs: Date.now(), line });
    stdout += `${line}\n`;
  });
  const exited = new Promise((resolve) => child.on("exit", (code) => resolve(code)));
  const ready = new Promise((resolve, reject) => {
    child.stderr.on("data", (d) => {
      stderr += d.toString();
      if (stderr.includes("sensor ready")) resolve(undefined);
    });
    child.on("exit", (code) => reject(new Error(`sockeye run exited ${code} before ready: ${stderr}`)));
  });
  // A test that never awaits `ready` (it waits for its own pattern) must not see it reject unhandled.
  ready.catch(() => {});
  return {
    child,
    ready,
    stdout: () => stdout,
    stderr: () => stderr,
    /** Every stdout line as JSON, with when it arrived. */
    findings: () => lines.map(({ receivedMs, line }) => ({ receivedMs, finding: JSON.parse(line) })),
    /**
     * Resolves when stderr has a line matching `pattern` (after `from` characters).
     * @param {RegExp} pattern
     */
    async waitFor(pattern, from = 0, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(stderr.slice(from))) {
        if (child.exitCode !== null) throw new Error(`daemon exited ${child.exitCode} before ${pattern}: ${stderr}`);
        if (Date.now() > deadline) throw new Error(`no ${pattern} within ${timeoutMs} ms: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    /** SIGTERM, then the exit code; a daemon that does not stop in 15 s is killed (it holds the instance lock). */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      const code = await exited;
      clearTimeout(killer);
      return code;
    },
    /** The `stopped` line, once the daemon has stopped. */
    stopped: () => stoppedLine(stderr),
  };
}

/**
 * The daemon's `stopped` log line as an object, or undefined when it has not logged it.
 * @param {string} stderr
 */
export function stoppedLine(stderr) {
  const line = stderr.split("\n").find((l) => l.includes('"message":"stopped"'));
  return line === undefined ? undefined : JSON.parse(line);
}

/**
 * Peak resident set of a live process, in MB (VmHWM).
 * @param {number} pid
 */
export function peakRssMb(pid) {
  const kb = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (kb === null) throw new Error(`no VmHWM for pid ${pid}`);
  return Number(kb[1]) / 1024;
}
