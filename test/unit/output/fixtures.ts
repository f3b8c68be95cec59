/**
 * Findings as the engine builds them, so output tests format the real ECS shape.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { Engine, builtinRules, type Finding } from "sockeye";
import { BASE_TIME_MS, connect, exec } from "../engine/fixtures.js";

/** TRC-101 for `bash -i` (pid 4242, parent sshd[4000], uid 1000) connecting fd 0 to 10.0.0.66:4444. */
export function reverseShellFinding(options: { args?: string[]; address?: string } = {}): Finding {
  const engine = new Engine({ rules: builtinRules(), fold: false, hostName: "test-host", now: () => BASE_TIME_MS });
  engine.handle(exec({ args: options.args ?? ["bash", "-i"] }));
  const findings = engine.handle(connect({ fd: 0, remote: { address: options.address ?? "10.0.0.66", port: 4444 } }));
  if (findings.length !== 1) throw new Error(`expected one finding, got ${findings.length}`);
  return findings[0]!;
}

/** n distinct findings (their pids differ), cheap to tell apart in a delivered body. */
export function numberedFindings(n: number): Finding[] {
  const base = reverseShellFinding();
  return Array.from({ length: n }, (_, index) => ({ ...base, event: { ...base.event, id: `finding-${index}` }, process: { ...base.process, pid: index } }));
}

/**
 * Runs a child script (test/unit/output/<script>) that spools findings for a durable output
 * and prints "spooled", then SIGKILLs it: what a crashed daemon leaves on disk.
 */
export async function spoolThenKill(script: string, args: string[]): Promise<void> {
  const child = spawn(join(process.cwd(), "node_modules/.bin/vite-node"), [join(import.meta.dirname, script), ...args], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (chunk: Buffer) => chunk.toString().includes("spooled") && resolve());
      child.once("exit", (code) => reject(new Error(`child exited (${code}) before spooling`)));
    });
    child.kill("SIGKILL");
    await new Promise((resolve) => child.once("exit", resolve));
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
}
