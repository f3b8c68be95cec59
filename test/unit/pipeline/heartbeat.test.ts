/**
 * The heartbeat: every interval a record with event.kind "state" (never an alert) goes to the
 * durable outputs (file, spooled webhook, NATS), so a SIEM can alert on a host whose sensor
 * went quiet; stdout and the other memory-queue outputs never carry it.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FileOutput, JsonLinesOutput, OutputSet } from "sockeye";
import { SpooledOutput, type SpooledFinding } from "sockeye/outputs";
import { Heartbeat } from "../../../src/pipeline/heartbeat.js";

let dir = "";
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "sockeye-heartbeat-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A durable output whose receiver takes everything: what a NATS or webhook send would carry. */
class CollectingSpooledOutput extends SpooledOutput {
  readonly sent: string[] = [];
  constructor(spoolDir: string) {
    super("collect", "collect", { dir: spoolDir, fsyncIntervalMs: 0 });
  }
  protected async connect(): Promise<void> {}
  protected send(findings: readonly SpooledFinding[]): Promise<number> {
    for (const finding of findings) this.sent.push(finding.json.toString());
    return Promise.resolve(findings.length);
  }
  protected async disconnect(): Promise<void> {}
}

describe("Heartbeat", () => {
  it("every interval, a state record on the durable outputs only", async () => {
    let stdoutText = "";
    const stdout = new JsonLinesOutput({ stream: new Writable({ write: (chunk: Buffer, _e, done) => ((stdoutText += chunk.toString()), done()) }) });
    const file = new FileOutput({ path: join(dir, "findings.jsonl") });
    const spooled = new CollectingSpooledOutput(join(dir, "spool"));
    const outputs = new OutputSet([stdout, file, spooled]);
    await outputs.open();
    let nowMs = Date.UTC(2026, 11, 7, 2, 0, 0);
    const heartbeat = new Heartbeat({
      intervalS: 60,
      outputs: () => outputs,
      status: () => ({ events: 10, findings: 2, lost: 0 }),
      hostName: "h",
      now: () => nowMs,
      timer: false,
    });
    heartbeat.start();
    nowMs += 60_000;
    heartbeat.beat();
    nowMs += 60_000;
    heartbeat.beat();
    await outputs.close(2000);

    const records = (await readFile(join(dir, "findings.jsonl"), "utf8")).trim().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(records).toHaveLength(2);
    expect(records[1]).toMatchObject({
      "@timestamp": "2026-12-07T02:02:00.000Z",
      event: { kind: "state", action: "heartbeat", module: "sockeye", dataset: "sockeye.heartbeat" },
      host: { name: "h" },
      sockeye: { heartbeat: { interval_s: 60, uptime_s: 120, events: 10, findings: 2, lost: 0 } },
    });
    expect(records[0]!.event).not.toMatchObject({ kind: "alert" });
    expect(spooled.sent.map((json) => (JSON.parse(json) as { event: { kind: string } }).event.kind)).toEqual(["state", "state"]);
    expect(stdoutText).toBe("");
  });

  it("an interval of 0 is off: start() sets no timer and beats nothing", () => {
    const written: unknown[] = [];
    const heartbeat = new Heartbeat({ intervalS: 0, outputs: () => ({ writeState: (record: unknown) => written.push(record) }) as unknown as OutputSet, status: () => ({ events: 0, findings: 0, lost: 0 }) });
    heartbeat.start();
    expect(heartbeat.running).toBe(false);
    heartbeat.stop();
    expect(written).toEqual([]);
  });
});
