import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type OutputStats } from "sockeye";
import { OUTPUT_DROP_REASONS } from "sockeye/outputs";
import { PrometheusMetrics, formatStatsLine, type StatsSnapshot } from "sockeye/metrics";
import { exposedListenWarning } from "../../../src/metrics/daemon-stats.js";

const noDrops = Object.fromEntries(OUTPUT_DROP_REASONS.map((reason) => [reason, 0])) as OutputStats["dropped"];

function snapshot(scale: number, timeMs = Date.UTC(2026, 10, 22, 10, 0, 0)): StatsSnapshot {
  return {
    timeMs,
    engine: {
      eventsByKind: { exec: 120 * scale, connect: 4 * scale },
      findingsByRule: { "TRC-101": 2 * scale },
      foldedByRule: { "TRC-101": 5 * scale },
      folded: 5 * scale,
      suppressedByRule: { "TRC-101": { service_handoff: 3 * scale, no_program: scale } },
      ruleErrors: {},
      dropped: { unknown_kind: 0, malformed_line: 1 },
      sequences: {
        "seq-a": { partials: 4, matched: scale, expired: 10 * scale, evicted: 0, untilDropped: 0 },
        "seq-b": { partials: 1, matched: 0, expired: 0, evicted: 2 * scale, untilDropped: scale },
      },
      ruleState: { "RELAY-001": { held: 3, pending: 1, indexed: 40, evicted: 2 * scale, expired: 9 * scale, incomplete: scale, abandoned: scale } },
    },
    kernel: {
      connect: { emitted: 4 * scale, lost: 0, errors: 0 },
      exec: { emitted: 120 * scale, lost: 7 * scale, errors: 1 },
    },
    outputs: [
      { name: "json-lines", type: "json-lines", written: 2 * scale, dropped: { ...noDrops }, queueDepth: 0, retries: 0, rotations: 0 },
      {
        name: "siem",
        type: "webhook",
        written: scale,
        dropped: { ...noDrops, queue_full: 3 * scale },
        queueDepth: 7,
        retries: 2,
        rotations: 0,
        lastError: "HTTP 503 Service Unavailable",
      },
    ],
    backlogEvents: 100 * scale,
    daemon: { eventLoopLagMs: { p50: 0.5, p99: 12, max: 40 * scale }, workersReplaced: scale },
  };
}

const running: PrometheusMetrics[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((metrics) => metrics.close()));
});

async function started(options: ConstructorParameters<typeof PrometheusMetrics>[0] = {}) {
  const metrics = new PrometheusMetrics({ port: 0, processMetrics: false, ...options });
  running.push(metrics);
  const address = await metrics.listen();
  return { metrics, address, url: `http://127.0.0.1:${address.port}` };
}

async function scrape(url: string): Promise<string[]> {
  const response = await fetch(`${url}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return (await response.text()).split("\n");
}

describe("Prometheus endpoint", () => {
  it("binds 127.0.0.1 and serves the snapshot's counters and gauges on /metrics", async () => {
    const { metrics, address, url } = await started();
    expect(address.address).toBe("127.0.0.1");
    metrics.update(snapshot(1));
    const lines = await scrape(url);
    expect(lines).toEqual(
      expect.arrayContaining([
        "# TYPE sockeye_events_total counter",
        'sockeye_events_total{kind="exec"} 120',
        'sockeye_events_total{kind="connect"} 4',
        'sockeye_findings_total{rule="TRC-101"} 2',
        'sockeye_suppressed_total{rule="TRC-101",reason="service_handoff"} 3',
        'sockeye_suppressed_total{rule="TRC-101",reason="no_program"} 1',
        'sockeye_folded_total{rule="TRC-101"} 5',
        'sockeye_engine_dropped_total{reason="malformed_line"} 1',
        'sockeye_kernel_records_total{hook="exec"} 120',
        'sockeye_kernel_lost_records_total{hook="exec"} 7',
        'sockeye_kernel_lost_records_total{hook="connect"} 0',
        'sockeye_kernel_errors_total{hook="exec"} 1',
        'sockeye_output_written_total{output="json-lines"} 2',
        'sockeye_output_written_total{output="siem"} 1',
        'sockeye_output_dropped_total{output="siem",reason="queue_full"} 3',
        'sockeye_output_dropped_total{output="siem",reason="http_rejected"} 0',
        'sockeye_output_retries_total{output="siem"} 2',
        'sockeye_sequence_matched_total{rule="seq-a"} 1',
        'sockeye_sequence_expired_total{rule="seq-a"} 10',
        'sockeye_sequence_evicted_total{rule="seq-b"} 2',
        'sockeye_sequence_evicted_total{rule="seq-a"} 0',
        'sockeye_sequence_until_dropped_total{rule="seq-b"} 1',
        "# TYPE sockeye_sequence_partials gauge",
        'sockeye_sequence_partials{rule="seq-a"} 4',
        "# TYPE sockeye_output_queue_depth gauge",
        'sockeye_output_queue_depth{output="siem"} 7',
        'sockeye_rule_evicted_total{rule="RELAY-001"} 2',
        'sockeye_rule_expired_total{rule="RELAY-001"} 9',
        'sockeye_rule_incomplete_looks_total{rule="RELAY-001"} 1',
        'sockeye_rule_abandoned_total{rule="RELAY-001"} 1',
        'sockeye_rule_state_entries{rule="RELAY-001",table="pending"} 1',
        'sockeye_rule_state_entries{rule="RELAY-001",table="indexed"} 40',
        "# TYPE sockeye_look_workers_replaced_total counter",
        "sockeye_look_workers_replaced_total 1",
        "# TYPE sockeye_pipeline_backlog_events gauge",
        "sockeye_pipeline_backlog_events 100",
        "# TYPE sockeye_event_loop_lag_seconds gauge",
        'sockeye_event_loop_lag_seconds{quantile="0.5"} 0.0005',
        'sockeye_event_loop_lag_seconds{quantile="0.99"} 0.012',
        'sockeye_event_loop_lag_seconds{quantile="1"} 0.04',
      ]),
    );
  });

  it("replaces the totals on each update instead of adding them up", async () => {
    const { metrics, url } = await started();
    metrics.update(snapshot(1));
    metrics.update(snapshot(5));
    const lines = await scrape(url);
    expect(lines).toContain('sockeye_events_total{kind="exec"} 600');
    expect(lines).toContain('sockeye_output_dropped_total{output="siem",reason="queue_full"} 15');
    expect(lines).not.toContain('sockeye_events_total{kind="exec"} 720');
  });

  it("exports Node process metrics unless told not to, and answers 404 off /metrics", async () => {
    const { url } = await started({ processMetrics: true });
    expect((await scrape(url)).some((line) => line.startsWith("sockeye_process_cpu_seconds_total"))).toBe(true);
    expect((await fetch(`${url}/`)).status).toBe(404);
    expect((await fetch(`${url}/metrics`, { method: "POST" })).status).toBe(405);
  });

  it("serves scrapes from a snapshot taken at most once a second, however often they come", async () => {
    let collected = 0;
    let nowMs = 1_000_000;
    const { url } = await started({ collect: () => snapshot(++collected), now: () => nowMs });
    await Promise.all(Array.from({ length: 20 }, () => scrape(url)));
    expect(collected).toBe(1);
    nowMs += 999;
    expect(await scrape(url)).toContain('sockeye_events_total{kind="exec"} 120');
    expect(collected).toBe(1);
    nowMs += 1;
    expect(await scrape(url)).toContain('sockeye_events_total{kind="exec"} 240');
    expect(collected).toBe(2);
  });

  describe("with a bearer token file", () => {
    let dir = "";
    afterEach(() => rmSync(dir, { recursive: true, force: true }));
    const tokenFile = (text: string, mode = 0o600) => {
      dir = mkdtempSync(join(tmpdir(), "sockeye-token-"));
      const path = join(dir, "token");
      writeFileSync(path, text, { mode });
      chmodSync(path, mode);
      return path;
    };

    it("answers /metrics only to that token; 401 without it or with another", async () => {
      const { url } = await started({ bearerTokenFile: tokenFile("s3cret-token\n") });
      const unauthorized = await fetch(`${url}/metrics`);
      expect(unauthorized.status).toBe(401);
      expect(unauthorized.headers.get("www-authenticate")).toBe('Bearer realm="sockeye"');
      expect((await fetch(`${url}/metrics`, { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
      expect((await fetch(`${url}/metrics`, { headers: { authorization: "Basic czNjcmV0LXRva2Vu" } })).status).toBe(401);
      const ok = await fetch(`${url}/metrics`, { headers: { authorization: "Bearer s3cret-token" } });
      expect(ok.status).toBe(200);
    });

    it("leaves the health endpoints open: a probe carries no token", async () => {
      const report = { status: "ready", live: true, ready: true, degraded: false, reasons: [], pid: 1, uptimeS: 5 } as const;
      const { url } = await started({ bearerTokenFile: tokenFile("s3cret-token\n"), health: () => ({ ...report, reasons: [] }) });
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
      expect((await fetch(`${url}/metrics`)).status).toBe(401);
    });

    it.each([
      ["empty", "\n", 0o600, /: is empty; put the token in it$/],
      ["readable by others", "t\n", 0o644, /: is readable by group or others \(mode 644\); chmod 600 it$/],
    ])("refuses a token file that is %s, with one line", async (_case, text, mode, message) => {
      const metrics = new PrometheusMetrics({ port: 0, processMetrics: false, bearerTokenFile: tokenFile(text, mode) });
      await expect(metrics.listen()).rejects.toThrow(message);
    });
  });

  it("rejects with one line when the port is taken", async () => {
    const { address } = await started();
    const second = new PrometheusMetrics({ port: address.port, processMetrics: false });
    await expect(second.listen()).rejects.toThrow(
      new RegExp(`^metrics: cannot listen on 127\\.0\\.0\\.1:${address.port}: the port is already in use \\(EADDRINUSE\\)$`),
    );
  });
});

describe("stats line", () => {
  it("is one JSON object with rates over the interval, totals, lost records per hook and queue depths", () => {
    const previous = snapshot(1);
    const current = snapshot(3, previous.timeMs + 10_000);
    const line = formatStatsLine(current, previous);
    expect(line).not.toContain("\n");
    expect(JSON.parse(line)).toEqual({
      time: "2026-11-22T10:00:10.000Z",
      level: "info",
      message: "stats",
      interval_s: 10,
      events_per_s: { exec: 24, connect: 0.8 },
      events: { exec: 360, connect: 12 },
      findings: { "TRC-101": 6 },
      suppressed: { "TRC-101": { service_handoff: 9, no_program: 3 } },
      folded: { "TRC-101": 15 },
      sequences: { rules: 2, partials: 5, matched: 3, expired: 30, evicted: 6, until_dropped: 3 },
      rule_state: { "RELAY-001": { held: 3, pending: 1, indexed: 40, evicted: 6, expired: 27, incomplete: 3, abandoned: 3 } },
      kernel_lost: { connect: 0, exec: 21 },
      backlog_events: 300,
      kernel_errors: { connect: 0, exec: 1 },
      event_loop_lag_ms: { p50: 0.5, p99: 12, max: 120 },
      workers_replaced: 3,
      outputs: {
        "json-lines": { written: 6, dropped: {}, queue: 0 },
        siem: { written: 3, dropped: { queue_full: 9 }, queue: 7, retries: 2 },
      },
    });
  });

  it("leaves the sequences out while no sequence rule runs", () => {
    const noSequences = snapshot(1);
    noSequences.engine.sequences = {};
    expect(JSON.parse(formatStatsLine(noSequences))).not.toHaveProperty("sequences");
  });

  it("leaves the daemon's own figures out outside a daemon", () => {
    const { daemon: _daemon, ...library } = snapshot(1);
    const parsed = JSON.parse(formatStatsLine(library)) as Record<string, unknown>;
    expect(parsed).not.toHaveProperty("event_loop_lag_ms");
    expect(parsed).not.toHaveProperty("workers_replaced");
  });

  it("carries totals only on the first line, when there is nothing to take a rate against", () => {
    const parsed = JSON.parse(formatStatsLine(snapshot(1))) as Record<string, unknown>;
    expect(parsed).not.toHaveProperty("events_per_s");
    expect(parsed).toMatchObject({ events: { exec: 120 }, kernel_lost: { exec: 7 } });
  });
});

describe("the metrics endpoint's address", () => {
  // The counters describe the host's processes; the README says to keep them on loopback.
  it.each(["0.0.0.0:9469", "[::]:9469", "10.0.0.5:9469", "[fe80::1]:1"])("%s: warns that other hosts can reach it", (listen) => {
    expect(exposedListenWarning(listen)).toBe(
      `metrics endpoint ${listen} is reachable from other hosts: it tells them this host's processes and detections; bind 127.0.0.1 unless you mean it`,
    );
  });

  it.each(["127.0.0.1:9469", "127.1.2.3:9469", "localhost:9469", "[::1]:9469"])("%s: loopback, no warning", (listen) => {
    expect(exposedListenWarning(listen)).toBeUndefined();
  });
});
