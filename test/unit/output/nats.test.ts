import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { NatsOutput, type Finding } from "sockeye";
import { PrometheusMetrics, formatStatsLine } from "sockeye/metrics";
import { subjectToken } from "sockeye/outputs";
import { numberedFindings, spoolThenKill } from "./fixtures.js";
import { freePort, readStream, startNats, stop } from "./servers.js";

const STREAM = "SOCKEYE_FINDINGS";
let dir: string;
let port: number;
let server: ChildProcess | undefined;
const outputs: NatsOutput[] = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "sockeye-nats-"));
  port = await freePort();
  server = await startNats(port, join(dir, "jetstream"));
});

afterEach(async () => {
  await Promise.all(outputs.splice(0).map((output) => output.close(0)));
  if (server !== undefined) await stop(server);
  rmSync(dir, { recursive: true, force: true });
});

function natsOutput(spool = "spool", extra: Partial<ConstructorParameters<typeof NatsOutput>[0]> = {}): NatsOutput {
  const output = new NatsOutput({ servers: [`nats://127.0.0.1:${port}`], hostId: "web-1.example.org", spool: { dir: join(dir, spool), fsyncIntervalMs: 50 }, ackTimeoutMs: 1000, ...extra });
  outputs.push(output);
  return output;
}

function ids(findings: readonly Finding[]): string[] {
  return findings.map((finding) => finding.event.id);
}

describe("NATS JetStream output", () => {
  it("publishes each finding to sockeye.findings.<host id> with Nats-Msg-Id = event.id, creating the stream", async () => {
    const output = natsOutput();
    await output.open();
    const findings = numberedFindings(5);
    output.write(findings);
    const flushed = await output.flush(5000);
    expect(flushed).toEqual({ complete: true, abandoned: 0 });
    const stored = await readStream(port, STREAM);
    expect(stored.map((message) => message.msgId)).toEqual(ids(findings));
    expect(stored.every((message) => message.subject === "sockeye.findings.web-1_example_org")).toBe(true);
    expect(stored[2]!.json).toEqual(JSON.parse(JSON.stringify(findings[2])));
    expect(output.stats()).toMatchObject({ written: 5, queueDepth: 0 });
  });

  it("keeps subject tokens free of dots, wildcards and spaces", () => {
    expect(subjectToken("web-1.example.org")).toBe("web-1_example_org");
    expect(subjectToken("a*b>c d")).toBe("a_b_c_d");
    expect(subjectToken("")).toBe("_");
  });

  it("a finding sent twice (a lost ack, a replay) is stored once inside the duplicate window", async () => {
    const findings = numberedFindings(10);
    const first = natsOutput("spool-a");
    const second = natsOutput("spool-b");
    await first.open();
    await second.open();
    first.write(findings);
    expect((await first.flush(5000)).complete).toBe(true);
    second.write(findings);
    expect((await second.flush(5000)).complete).toBe(true);
    expect((await readStream(port, STREAM)).map((message) => message.msgId)).toEqual(ids(findings));
  });

  it("server stopped mid-stream and restarted: every finding arrives exactly once, in order", async () => {
    const output = natsOutput();
    await output.open();
    const findings = numberedFindings(60);
    output.write(findings.slice(0, 20));
    expect((await output.flush(5000)).complete).toBe(true);
    await stop(server!);
    server = undefined;
    // Written while the server is down: spooled, not dropped.
    for (const finding of findings.slice(20, 40)) output.write([finding]);
    expect((await output.flush(500)).complete).toBe(false);
    expect(output.stats().queueDepth).toBe(20);
    server = await startNats(port, join(dir, "jetstream"));
    output.write(findings.slice(40));
    expect((await output.flush(15_000)).complete).toBe(true);
    const stored = await readStream(port, STREAM);
    expect(stored.map((message) => message.msgId)).toEqual(ids(findings));
    const stats = output.stats();
    expect(stats.queueDepth).toBe(0);
    expect(Object.values(stats.dropped).every((n) => n === 0)).toBe(true);
  }, 30_000);

  it("the server down at start: open() succeeds and the backlog goes once it is up", async () => {
    await stop(server!);
    server = undefined;
    const output = natsOutput();
    await output.open();
    const findings = numberedFindings(8);
    output.write(findings);
    expect((await output.flush(300)).complete).toBe(false);
    server = await startNats(port, join(dir, "jetstream"));
    expect((await output.flush(15_000)).complete).toBe(true);
    expect((await readStream(port, STREAM)).map((message) => message.msgId)).toEqual(ids(findings));
  }, 30_000);

  it("SIGKILLed with a backlog: the next process sends it, in order, none lost or doubled", async () => {
    await stop(server!);
    server = undefined;
    const spool = join(dir, "spool");
    // The child spools 40 findings while the server is down, says so, and is killed.
    await spoolThenKill("nats-child.ts", [String(port), spool, "40"]);
    server = await startNats(port, join(dir, "jetstream"));
    const output = natsOutput();
    await output.open();
    expect(output.stats().queueDepth).toBe(40);
    expect((await output.flush(15_000)).complete).toBe(true);
    expect((await readStream(port, STREAM)).map((message) => message.msgId)).toEqual(ids(numberedFindings(40)));
  }, 40_000);

  it("the spool's depth and age are in the stats line and Prometheus", async () => {
    await stop(server!);
    server = undefined;
    const output = natsOutput();
    await output.open();
    output.write(numberedFindings(3));
    const stats = output.stats();
    expect(stats).toMatchObject({ queueDepth: 3, spool: { oldestAgeS: 0 } });
    expect(stats.spool!.bytes).toBeGreaterThan(0);
    const engine = { eventsByKind: {}, findingsByRule: {}, foldedByRule: {}, folded: 0, suppressedByRule: {}, ruleErrors: {}, dropped: { unknown_kind: 0, malformed_line: 0 }, sequences: {}, ruleState: {} };
    const snapshot = { timeMs: Date.now(), engine, kernel: {}, outputs: [stats] };
    const line = JSON.parse(formatStatsLine(snapshot)) as { outputs: Record<string, unknown> };
    expect(line.outputs.nats).toMatchObject({ queue: 3, spool_bytes: stats.spool!.bytes, spool_age_s: 0 });
    const metrics = new PrometheusMetrics({ processMetrics: false });
    metrics.update(snapshot);
    const text = await metrics.registry.metrics();
    expect(text).toContain(`sockeye_output_spool_bytes{output="nats"} ${stats.spool!.bytes}`);
    expect(text).toContain('sockeye_output_spool_oldest_age_seconds{output="nats"} 0');
  });

  it("refuses a bad credentials file at open with one line", async () => {
    const output = natsOutput("spool", { credsFile: join(dir, "missing.creds") });
    await expect(output.open()).rejects.toThrow(/^output nats: credentials file .*missing\.creds: ENOENT[^\n]*$/);
  });
});
