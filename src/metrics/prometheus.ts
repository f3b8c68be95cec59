/**
 * The Prometheus endpoint: `GET /metrics` on 127.0.0.1 (by default) serves the counters of
 * the latest StatsSnapshot the daemon handed to `update()`.
 *
 * The daemon's numbers are totals kept elsewhere (engine, kernel maps, outputs), so each
 * update replaces every series rather than adding to it; that happens synchronously, so a
 * scrape never sees half an update. A total that goes down (a new daemon)
 * reads to Prometheus as a counter reset, which rate() already handles.
 *
 * With `collect`, a scrape is answered from a rendering at most SNAPSHOT_MAX_AGE_MS old, and
 * scrapes arriving together share one: however often something scrapes, the daemon takes
 * one snapshot a second. With `bearerTokenFile`, /metrics answers only to that token (the
 * counters describe the host's processes and detections).
 */
import { timingSafeEqual } from "node:crypto";
import { statSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";
import { EXIT_BAD_INPUT, EXIT_REFUSED, SockeyeError } from "../errors.js";
import { describeError } from "../output/output.js";
import type { HealthReport } from "../service/health.js";
import { readRegularTextFile } from "../service/regular-file.js";
import type { StatsSnapshot } from "./snapshot.js";

export interface PrometheusMetricsOptions {
  /** Address to bind (default 127.0.0.1: the counters describe the host's processes). */
  host?: string;
  /** Port (default 9469; 0 picks a free one, see `address`). */
  port?: number;
  /** Also export prom-client's Node process metrics (CPU, memory, event loop lag; default true). */
  processMetrics?: boolean;
  /** Called for a fresh snapshot (the daemon's), at most once a second; without it, update() feeds the series. */
  collect?: () => StatsSnapshot;
  /** The daemon's health, served at /healthz (live) and /readyz (ready; degraded still is). */
  health?: () => HealthReport;
  /** A file holding the token a scrape must send as `Authorization: Bearer <token>`; read at listen(). */
  bearerTokenFile?: string;
  /** The clock the snapshot's age is measured by; injectable for tests. */
  now?: () => number;
}

const SNAPSHOT_MAX_AGE_MS = 1000;
/** A token is a line of text; a bigger file is not one. */
const MAX_TOKEN_FILE_BYTES = 4096;

/** The token in `path`: the file's text without surrounding whitespace; one line when it cannot be used. */
function readBearerToken(path: string): Buffer {
  const fail = (problem: string) => new SockeyeError(`metrics: bearer token file ${path}: ${problem}`, "SOCKEYE_METRICS_TOKEN", EXIT_BAD_INPUT);
  let text: string;
  try {
    text = readRegularTextFile(path, MAX_TOKEN_FILE_BYTES);
  } catch (error) {
    throw fail(describeError(error).replace(`${path}: `, ""));
  }
  const token = text.trim();
  if (token === "") throw fail("is empty; put the token in it");
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) throw fail(`is readable by group or others (mode ${mode.toString(8)}); chmod 600 it`);
  return Buffer.from(token);
}

export const DEFAULT_METRICS_PORT = 9469;

export class PrometheusMetrics {
  readonly registry = new Registry();
  private readonly host: string;
  private readonly port: number;
  private server: Server | undefined;
  private readonly collect: (() => StatsSnapshot) | undefined;
  private readonly bearerTokenFile: string | undefined;
  private bearerToken: Buffer | undefined;
  private readonly now: () => number;
  /** The last rendering of a collected snapshot, shared by the scrapes of the next second. */
  private rendered: { atMs: number; body: Promise<string> } | undefined;
  private readonly health: (() => HealthReport) | undefined;
  private readonly series;

  constructor(options: PrometheusMetricsOptions = {}) {
    this.host = options.host ?? "127.0.0.1";
    this.port = options.port ?? DEFAULT_METRICS_PORT;
    this.collect = options.collect;
    this.bearerTokenFile = options.bearerTokenFile;
    this.now = options.now ?? Date.now;
    this.health = options.health;
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: "sockeye_" });
    const registers = [this.registry];
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
      new Counter<L>({ name: `sockeye_${name}`, help, labelNames, registers });
    this.series = {
      events: counter("events_total", "Kernel events decoded, by kind.", ["kind"]),
      findings: counter("findings_total", "Findings emitted, by rule id.", ["rule"]),
      suppressed: counter("suppressed_total", "Detections a rule judged benign (or an allowlist matched), by rule id and reason.", ["rule", "reason"]),
      folded: counter("folded_total", "Detections folded into an earlier finding of the same incident, by rule id.", ["rule"]),
      engineDropped: counter("engine_dropped_total", "Events that never reached the rules, by reason.", ["reason"]),
      ruleErrors: counter("rule_errors_total", "Exceptions thrown by a rule, by rule id.", ["rule"]),
      kernelEmitted: counter("kernel_records_total", "Records the eBPF programs submitted, by hook.", ["hook"]),
      kernelLost: counter("kernel_lost_records_total", "Records lost in the kernel (ring buffer full), by hook.", ["hook"]),
      kernelErrors: counter("kernel_errors_total", "Helper errors in the eBPF programs, by hook.", ["hook"]),
      written: counter("output_written_total", "Findings delivered, by output.", ["output"]),
      dropped: counter("output_dropped_total", "Findings an output dropped, by output and reason.", ["output", "reason"]),
      retries: counter("output_retries_total", "Requests repeated after a retryable failure, by output.", ["output"]),
      rotations: counter("output_rotations_total", "File rotations, by output.", ["output"]),
      sequenceMatched: counter("sequence_matched_total", "Sequences an Elastic sequence rule completed, by rule id.", ["rule"]),
      sequenceExpired: counter("sequence_expired_total", "Partial matches dropped because the sequence's maxspan passed, by rule id.", ["rule"]),
      sequenceEvicted: counter(
        "sequence_evicted_total",
        "Partial matches dropped to keep a sequence rule's memory bounded (a sequence may have been missed), by rule id.",
        ["rule"],
      ),
      sequenceUntilDropped: counter("sequence_until_dropped_total", "Partial matches dropped by the sequence's until condition, by rule id.", ["rule"]),
      ruleEvicted: counter("rule_evicted_total", "Entries a rule dropped to stay within a count bound (pending candidates among them: a detection may have been missed), by rule id.", ["rule"]),
      ruleExpired: counter("rule_expired_total", "Entries a rule dropped at their age bound, by rule id.", ["rule"]),
      ruleIncomplete: counter("rule_incomplete_looks_total", "Looks at the host a rule made that stopped at their budget (fds read, bytes hashed), by rule id.", ["rule"]),
      ruleAbandoned: counter("rule_abandoned_total", "Candidates a rule dropped at a count bound before any verdict (shells never judged), by rule id.", ["rule"]),
      workersReplaced: counter("look_workers_replaced_total", "Host-look worker threads replaced because a look hung past its bound (a file on a hung mount) or the worker failed (out of its heap limit).", []),
      eventLoopLag: new Gauge<"quantile">({
        name: "sockeye_event_loop_lag_seconds",
        help: "How long batches of events waited for the daemon's event loop since it was ready, by quantile (0.5, 0.99, and 1 for the maximum).",
        labelNames: ["quantile"],
        registers,
      }),
      backlog: new Gauge({
        name: "sockeye_pipeline_backlog_events",
        help: "Events the sensor delivered that wait for their slice of the event loop (a flood is worked through in slices; past 262,144 at once).",
        registers,
      }),
      ruleState: new Gauge<"rule" | "table">({
        name: "sockeye_rule_state_entries",
        help: "Entries a stateful rule keeps now, by rule id and table (held, pending, indexed).",
        labelNames: ["rule", "table"],
        registers,
      }),
      sequencePartials: new Gauge<"rule">({
        name: "sockeye_sequence_partials",
        help: "Partial matches a sequence rule holds now, by rule id.",
        labelNames: ["rule"],
        registers,
      }),
      queueDepth: new Gauge<"output">({
        name: "sockeye_output_queue_depth",
        help: "Findings accepted by an output and not yet delivered or dropped.",
        labelNames: ["output"],
        registers,
      }),
      spoolBytes: new Gauge<"output">({
        name: "sockeye_output_spool_bytes",
        help: "Bytes a durable output's on-disk spool holds (its depth is sockeye_output_queue_depth).",
        labelNames: ["output"],
        registers,
      }),
      spoolAge: new Gauge<"output">({
        name: "sockeye_output_spool_oldest_age_seconds",
        help: "Age of the oldest finding a durable output's spool holds unacknowledged; 0 when empty.",
        labelNames: ["output"],
        registers,
      }),
    };
  }

  update(snapshot: StatsSnapshot): void {
    const s = this.series;
    for (const metric of Object.values(s)) metric.reset();
    for (const [kind, n] of Object.entries(snapshot.engine.eventsByKind)) s.events.inc({ kind }, n);
    for (const [rule, n] of Object.entries(snapshot.engine.findingsByRule)) s.findings.inc({ rule }, n);
    for (const [rule, reasons] of Object.entries(snapshot.engine.suppressedByRule)) {
      for (const [reason, n] of Object.entries(reasons)) s.suppressed.inc({ rule, reason }, n);
    }
    for (const [rule, n] of Object.entries(snapshot.engine.foldedByRule)) s.folded.inc({ rule }, n);
    for (const [reason, n] of Object.entries(snapshot.engine.dropped)) s.engineDropped.inc({ reason }, n);
    for (const [rule, n] of Object.entries(snapshot.engine.ruleErrors)) s.ruleErrors.inc({ rule }, n);
    for (const [rule, stats] of Object.entries(snapshot.engine.sequences)) {
      s.sequenceMatched.inc({ rule }, stats.matched);
      s.sequenceExpired.inc({ rule }, stats.expired);
      s.sequenceEvicted.inc({ rule }, stats.evicted);
      s.sequenceUntilDropped.inc({ rule }, stats.untilDropped);
      s.sequencePartials.set({ rule }, stats.partials);
    }
    for (const [rule, state] of Object.entries(snapshot.engine.ruleState)) {
      s.ruleEvicted.inc({ rule }, state.evicted);
      s.ruleExpired.inc({ rule }, state.expired);
      s.ruleIncomplete.inc({ rule }, state.incomplete);
      s.ruleAbandoned.inc({ rule }, state.abandoned);
      for (const table of ["held", "pending", "indexed"] as const) s.ruleState.set({ rule, table }, state[table]);
    }
    for (const [hook, counters] of Object.entries(snapshot.kernel)) {
      s.kernelEmitted.inc({ hook }, counters.emitted);
      s.kernelLost.inc({ hook }, counters.lost);
      s.kernelErrors.inc({ hook }, counters.errors);
    }
    if (snapshot.backlogEvents !== undefined) s.backlog.set(snapshot.backlogEvents);
    if (snapshot.daemon !== undefined) {
      s.workersReplaced.inc(snapshot.daemon.workersReplaced);
      const lag = snapshot.daemon.eventLoopLagMs;
      for (const [quantile, ms] of [["0.5", lag.p50], ["0.99", lag.p99], ["1", lag.max]] as const) s.eventLoopLag.set({ quantile }, ms / 1000);
    }
    for (const output of snapshot.outputs) {
      const labels = { output: output.name };
      s.written.inc(labels, output.written);
      for (const [reason, n] of Object.entries(output.dropped)) s.dropped.inc({ ...labels, reason }, n);
      s.retries.inc(labels, output.retries);
      s.rotations.inc(labels, output.rotations);
      s.queueDepth.set(labels, output.queueDepth);
      if (output.spool !== undefined) {
        s.spoolBytes.set(labels, output.spool.bytes);
        s.spoolAge.set(labels, output.spool.oldestAgeS);
      }
    }
  }

  /** Starts the HTTP server; rejects with one line (e.g. the port is taken). */
  async listen(): Promise<AddressInfo> {
    if (this.bearerTokenFile !== undefined) this.bearerToken = readBearerToken(this.bearerTokenFile);
    const server = createServer((request, response) => void this.serve(request, response));
    await new Promise<void>((resolve, reject) => {
      server.once("error", (error: NodeJS.ErrnoException) => {
        // Node's own text repeats the address; the usual causes get a plain sentence.
        const problem =
          error.code === "EADDRINUSE"
            ? "the port is already in use (EADDRINUSE)"
            : error.code === "EADDRNOTAVAIL"
              ? "no interface has that address (EADDRNOTAVAIL)"
              : describeError(error);
        reject(new SockeyeError(`metrics: cannot listen on ${this.host}:${this.port}: ${problem}`, "SOCKEYE_METRICS_LISTEN", EXIT_REFUSED));
      });
      server.listen(this.port, this.host, () => resolve());
    });
    // Later server errors (a failed accept) must not take the daemon down; a scrape retries.
    server.on("error", () => {});
    this.server = server;
    return this.address!;
  }

  /** Where the server listens, once listen() has resolved. */
  get address(): AddressInfo | undefined {
    return (this.server?.address() as AddressInfo | null) ?? undefined;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    // A scraper's keep-alive connection must not hold the daemon's shutdown.
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = new URL(request.url ?? "/", "http://localhost").pathname;
    if ((path === "/healthz" || path === "/readyz") && this.health !== undefined) {
      // Liveness is the event loop answering: it never depends on coverage.
      const report = this.health();
      const ok = path === "/healthz" || report.ready;
      return void response.writeHead(ok ? 200 : 503, { "content-type": "application/json" }).end(`${JSON.stringify(report)}\n`);
    }
    if (path !== "/metrics") return void response.writeHead(404, { "content-type": "text/plain" }).end("not found: try /metrics\n");
    if (request.method !== "GET" && request.method !== "HEAD")
      return void response.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end();
    if (!this.authorized(request)) return void response.writeHead(401, { "www-authenticate": 'Bearer realm="sockeye"', "content-type": "text/plain" }).end("unauthorized\n");
    try {
      const body = await this.body();
      response.writeHead(200, { "content-type": this.registry.contentType }).end(request.method === "HEAD" ? undefined : body);
    } catch (error) {
      response.writeHead(500, { "content-type": "text/plain" }).end(`${describeError(error)}\n`);
    }
  }

  private body(): Promise<string> {
    if (this.collect === undefined) return this.registry.metrics();
    const nowMs = this.now();
    if (this.rendered === undefined || nowMs - this.rendered.atMs >= SNAPSHOT_MAX_AGE_MS) {
      this.update(this.collect());
      this.rendered = { atMs: nowMs, body: this.registry.metrics() };
    }
    return this.rendered.body;
  }

  private authorized(request: IncomingMessage): boolean {
    if (this.bearerToken === undefined) return true;
    const match = /^Bearer (.+)$/.exec(request.headers.authorization ?? "");
    if (match === null) return false;
    const offered = Buffer.from(match[1]!);
    return offered.length === this.bearerToken.length && timingSafeEqual(offered, this.bearerToken);
  }
}
