/**
 * The daemon's visibility: a stats line on stderr every `stats_interval_s` and, when asked,
 * a Prometheus endpoint. Both read one StatsSnapshot of the engine, the kernel counters and
 * the outputs, taken when a line is written or a scrape comes in. The endpoint listens
 * before the sensor loads, so a port that is taken fails the start before anything is in
 * the kernel.
 */
import type { HealthReport } from "../service/health.js";
import type { StatsSnapshot } from "./snapshot.js";
import { formatStatsLine } from "./stats-line.js";
import type { PrometheusMetrics } from "./prometheus.js";
import { warn } from "../service/log.js";

/** The config file's [metrics] table. */
export interface MetricsConfig {
  /** Seconds between stats lines on stderr; 0 turns them off. */
  stats_interval_s: number;
  /** "host:port" for a Prometheus /metrics endpoint; absent: no endpoint. */
  prometheus_listen?: string | undefined;
  /** A file holding the bearer token /metrics requires. */
  prometheus_token_file?: string | undefined;
}

function emptySnapshot(): StatsSnapshot {
  const engine = { eventsByKind: {}, findingsByRule: {}, foldedByRule: {}, folded: 0, suppressedByRule: {}, ruleErrors: {}, dropped: { unknown_kind: 0, malformed_line: 0 }, sequences: {}, ruleState: {} };
  return { timeMs: Date.now(), engine, kernel: {}, outputs: [] };
}

/** Before the sensor is up the endpoint already answers: live, not ready. */
const STARTING: HealthReport = { status: "not_ready", live: true, ready: false, degraded: false, reasons: ["starting: the sensor is not attached yet"], pid: process.pid, uptimeS: 0 };

function parseListen(listen: string): { host: string; port: number } {
  const colon = listen.lastIndexOf(":");
  return { host: listen.slice(0, colon).replace(/^\[(.*)\]$/, "$1"), port: Number(listen.slice(colon + 1)) };
}

/**
 * The warning for an endpoint other hosts can reach (0.0.0.0, ::, a routable address), or
 * undefined on loopback. A warning, not a refusal: behind a firewall it may be meant.
 */
export function exposedListenWarning(listen: string): string | undefined {
  const { host } = parseListen(listen);
  if (host === "localhost" || host === "::1" || /^127\./.test(host)) return undefined;
  return `metrics endpoint ${listen} is reachable from other hosts: it tells them this host's processes and detections; bind 127.0.0.1 unless you mean it`;
}

export class DaemonStats {
  private snapshotSource: (() => StatsSnapshot) | undefined;
  private healthSource: (() => HealthReport) | undefined;
  private previous: StatsSnapshot | undefined;
  private statsTimer: NodeJS.Timeout | undefined;
  private metrics: PrometheusMetrics | undefined;
  private listening: string | undefined;

  /** Starts (or moves) the endpoint per `config`; rejects with one line when it cannot listen. */
  async configure(config: MetricsConfig): Promise<void> {
    if (config.prometheus_listen !== this.listening) {
      // The new endpoint listens before the old one closes: a move that fails keeps the old.
      let next: PrometheusMetrics | undefined;
      if (config.prometheus_listen !== undefined) {
        // Loaded only when asked for: prom-client adds 12.6 MB to the daemon's RSS (measured
        // on Node 20; the idle footprint goal is 60 MB).
        const { PrometheusMetrics } = await import("./prometheus.js");
        // A scrape reads a snapshot at most a second old (none before the sensor is attached).
        next = new PrometheusMetrics({
          ...parseListen(config.prometheus_listen),
          collect: () => this.snapshotSource?.() ?? emptySnapshot(),
          health: () => this.healthSource?.() ?? STARTING,
          ...(config.prometheus_token_file !== undefined ? { bearerTokenFile: config.prometheus_token_file } : {}),
        });
        await next.listen();
        const exposed = exposedListenWarning(config.prometheus_listen);
        if (exposed !== undefined) warn(exposed);
      }
      await this.metrics?.close();
      this.metrics = next;
      this.listening = config.prometheus_listen;
    }
    clearInterval(this.statsTimer);
    this.statsTimer = undefined;
    if (config.stats_interval_s > 0) {
      this.statsTimer = setInterval(() => this.writeStatsLine(), config.stats_interval_s * 1000).unref();
    }
  }

  /** From now on, /healthz and /readyz answer from `source`. */
  attachHealth(source: () => HealthReport): void {
    this.healthSource = source;
  }

  /** From now on, stats come from `source` (the running sensor, engine and outputs). */
  attach(source: () => StatsSnapshot): void {
    this.snapshotSource = source;
    this.previous = source();
  }

  get metricsAddress(): string | undefined {
    const address = this.metrics?.address;
    return address !== undefined ? `${address.address}:${address.port}` : undefined;
  }

  async stop(): Promise<void> {
    clearInterval(this.statsTimer);
    this.snapshotSource = undefined;
    await this.metrics?.close();
    this.metrics = undefined;
    this.listening = undefined;
  }

  private writeStatsLine(): void {
    if (this.snapshotSource === undefined) return;
    const current = this.snapshotSource();
    process.stderr.write(`${formatStatsLine(current, this.previous)}\n`);
    this.previous = current;
  }
}
