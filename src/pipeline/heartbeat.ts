/**
 * The heartbeat: every `intervalS` a state record (ECS `event.kind: "state"`, never an alert)
 * on the durable outputs (file, spooled webhook, NATS), so a SIEM can alert on a host whose
 * sensor went quiet (stopped, killed, cut off) rather than take silence for a clean host.
 * It carries the running totals, so a receiver also sees a sensor that runs but sees nothing.
 */
import { newEventId } from "../engine/finding.js";
import { hostname } from "node:os";
import type { StatsSnapshot } from "../metrics/snapshot.js";
import type { OutputSet } from "../output/output-set.js";
import type { StateRecord } from "../output/output.js";

export const DEFAULT_HEARTBEAT_INTERVAL_S = 60;

/** Totals since the start, as the heartbeat reports them. */
export interface HeartbeatStatus {
  events: number;
  findings: number;
  /** Kernel records lost and findings dropped by outputs. */
  lost: number;
}

/** The totals of a stats snapshot. */
export function heartbeatStatus(snapshot: StatsSnapshot): HeartbeatStatus {
  const sum = (counts: Iterable<number>) => [...counts].reduce((total, n) => total + n, 0);
  return {
    events: sum(Object.values(snapshot.engine.eventsByKind)),
    findings: sum(Object.values(snapshot.engine.findingsByRule)),
    lost: sum(Object.values(snapshot.kernel).map((counters) => counters.lost)) + sum(snapshot.outputs.map((output) => sum(Object.values(output.dropped)))),
  };
}

export interface HeartbeatOptions {
  /** Seconds between records; 0 is off. */
  intervalS: number;
  /** The outputs now (they change at a reload). */
  outputs: () => OutputSet;
  status: () => HeartbeatStatus;
  hostName?: string;
  now?: () => number;
  /** false: no timer, the caller runs beat() (tests). */
  timer?: boolean;
}

export class Heartbeat {
  private readonly now: () => number;
  private readonly hostName: string;
  private startedMs = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: HeartbeatOptions) {
    this.now = options.now ?? Date.now;
    this.hostName = options.hostName ?? hostname();
  }

  get running(): boolean {
    return this.timer !== undefined;
  }

  start(): void {
    this.startedMs = this.now();
    if (this.options.intervalS > 0 && this.options.timer !== false) this.timer = setInterval(() => this.beat(), this.options.intervalS * 1000).unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  beat(): void {
    if (this.options.intervalS <= 0) return;
    const nowMs = this.now();
    const at = new Date(nowMs).toISOString();
    const record: StateRecord = {
      "@timestamp": at,
      event: { kind: "state", id: newEventId(), category: ["host"], type: ["info"], action: "heartbeat", dataset: "sockeye.heartbeat", module: "sockeye", created: at },
      host: { name: this.hostName, os: { type: "linux" } },
      sockeye: {
        heartbeat: {
          interval_s: this.options.intervalS,
          uptime_s: Math.round((nowMs - this.startedMs) / 1000),
          ...this.options.status(),
        },
      },
    };
    this.options.outputs().writeState(record);
  }
}
