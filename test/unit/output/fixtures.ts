/**
 * Findings as the engine builds them, so output tests format the real ECS shape.
 */
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
