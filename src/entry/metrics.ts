/** `sockeye/metrics`: the Prometheus endpoint and the stats line, fed a StatsSnapshot. */
export type { DaemonProcessStats, StatsSnapshot } from "../metrics/snapshot.js";
export { DEFAULT_METRICS_PORT, PrometheusMetrics, type PrometheusMetricsOptions } from "../metrics/prometheus.js";
export { formatStatsLine } from "../metrics/stats-line.js";
