/**
 * Keeps the library story true: the example agent in examples/custom-agent runs its own
 * rule next to sockeye's built-in rules over its sample capture, as its README says.
 */
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import type { Finding } from "sockeye";
import { SAMPLE_CAPTURE, runAgent } from "../../../examples/custom-agent/agent.js";

async function runExample() {
  const out = new PassThrough();
  const err = new PassThrough();
  const chunks = { out: "", err: "" };
  out.on("data", (chunk: Buffer) => (chunks.out += chunk.toString()));
  err.on("data", (chunk: Buffer) => (chunks.err += chunk.toString()));
  await runAgent({ capture: SAMPLE_CAPTURE, out, err, hostName: "example-host", now: () => Date.UTC(2026, 10, 22, 12) });
  const findings = chunks.out
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as Finding);
  return { findings, errLines: chunks.err.trim().split("\n") };
}

describe("examples/custom-agent", () => {
  it("prints one TRC-101 finding for the reverse shell and one for the watched port", async () => {
    const { findings } = await runExample();
    expect(findings.map((finding) => finding.rule.id)).toEqual(["TRC-101", "AGENT-watched-port"]);

    const [shell, redis] = findings;
    expect(shell?.["finding"]).toEqual({ "IP address": "10.0.0.66", Port: "4444", "File descriptor": 1 });
    expect(shell?.process).toMatchObject({ pid: 900, executable: "/usr/bin/bash", args: ["bash", "-i"], parent: { pid: 810, name: "bash" } });
    expect(shell?.host.name).toBe("example-host");

    expect(redis?.["destination"]).toEqual({ ip: "10.0.0.20", port: 6379 });
    expect(redis?.["labels"]).toEqual({ launched_by: "bash" });
    expect(redis?.process).toMatchObject({ name: "redis-cli", args: ["redis-cli", "-h", "10.0.0.20", "ping"] });
    expect(redis?.event.created).toBe("2026-11-22T12:00:00.000Z");
  });

  it("summarises the replay on stderr: folded dups and reconnects, no malformed lines", async () => {
    const { errLines } = await runExample();
    expect(errLines).toHaveLength(1);
    expect(JSON.parse(errLines[0] ?? "")).toEqual({
      summary: {
        events: 18,
        findings: 2,
        malformedLines: 0,
        findingsByRule: { "TRC-101": 1, "AGENT-watched-port": 1 },
        folded: 3,
      },
    });
  });
});
