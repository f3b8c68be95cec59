/**
 * The daemon's health, as a fleet's probes and a person ask for it. Three answers, kept apart
 * on purpose: live (the event loop answers: never tied to coverage, or a busy node would be
 * restarted for being busy), ready (every configured hook attached and a batch processed),
 * and degraded (ready, but records were lost, an output dropped findings or a rule ran out of
 * budget in the last minute: it says what, and does not fail readiness, so a busy node does
 * not stall a rollout while the SIEM still learns of the gap).
 */

export type Counts = Record<string, Record<string, number>>;

export interface HealthReport {
  status: "ready" | "degraded" | "not_ready";
  live: true;
  ready: boolean;
  degraded: boolean;
  /** Why not ready, or what degraded it; empty when all is clear. */
  reasons: string[];
  pid: number;
  uptimeS: number;
}

export interface HealthOptions {
  /** Why the sensor is not ready now; [] when it is. */
  notReady: () => string[];
  /** Cumulative loss counts by source and reason (the coverage monitor's). */
  losses: () => Counts;
  /** How long a loss keeps the daemon degraded (default 60 s). */
  degradedWindowMs?: number;
  now?: () => number;
  /**
   * false: no timer of its own; whoever samples the losses already (the daemon's coverage
   * check) passes each sample to observe(), so the counters are read once, not twice.
   */
  timer?: boolean;
}

export const DEFAULT_DEGRADED_WINDOW_MS = 60_000;

export class Health {
  private readonly windowMs: number;
  private readonly now: () => number;
  private readonly startedMs: number;
  private previous: Counts | undefined;
  /** Per source/reason: when it last grew and by how much in the window. */
  private readonly recent = new Map<string, { atMs: number; added: number }>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: HealthOptions) {
    this.windowMs = options.degradedWindowMs ?? DEFAULT_DEGRADED_WINDOW_MS;
    this.now = options.now ?? Date.now;
    this.startedMs = this.now();
  }

  /** Samples the loss counts every second (unless fed by observe()), so a report knows when each last grew. */
  start(): void {
    this.sample();
    if (this.options.timer === false) return;
    this.timer = setInterval(() => this.sample(), 1_000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  sample(): void {
    this.observe(this.options.losses());
  }

  /** Takes a sample of the loss counts someone else read; returns it. */
  observe(counts: Counts): Counts {
    const now = this.now();
    // The same object as the last sample (nothing read afresh): nothing grew.
    if (counts !== this.previous) for (const [source, reasons] of Object.entries(counts)) {
      for (const [reason, value] of Object.entries(reasons)) {
        const before = this.previous?.[source]?.[reason] ?? (this.previous === undefined ? value : 0);
        if (value <= before) continue;
        const key = `${source} ${reason}`;
        const last = this.recent.get(key);
        const added = last !== undefined && now - last.atMs <= this.windowMs ? last.added + (value - before) : value - before;
        this.recent.set(key, { atMs: now, added });
      }
    }
    this.previous = counts;
    for (const [key, last] of this.recent) if (now - last.atMs > this.windowMs) this.recent.delete(key);
    return counts;
  }

  report(): HealthReport {
    const now = this.now();
    const notReady = this.options.notReady();
    const degradedBy = [...this.recent]
      .filter(([, last]) => now - last.atMs <= this.windowMs)
      .map(([key, last]) => `${key}: ${last.added} in the last ${Math.round(this.windowMs / 1000)} s`);
    const ready = notReady.length === 0;
    const degraded = ready && degradedBy.length > 0;
    return {
      status: !ready ? "not_ready" : degraded ? "degraded" : "ready",
      live: true,
      ready,
      degraded,
      reasons: ready ? degradedBy : notReady,
      pid: process.pid,
      uptimeS: Math.round((now - this.startedMs) / 1000),
    };
  }
}

/** How often the daemon checks that every program is still attached (a few link queries). */
export const ATTACH_CHECK_INTERVAL_MS = 5_000;

export interface Detached {
  program: string;
  reason: string;
}

/**
 * Checks a sensor's programs every `intervalMs`; `onDetached` once per program newly found
 * detached (behind the daemon's back: bpftool, another root process, injected code).
 */
export function watchAttachment(
  sensor: { checkAttached(): { detached: Detached[] } },
  onDetached: (program: string, reason: string) => void,
  intervalMs = ATTACH_CHECK_INTERVAL_MS,
): { detached(): Detached[]; stop(): void } {
  let detached: Detached[] = [];
  const timer = setInterval(() => {
    const found = sensor.checkAttached().detached;
    for (const d of found) if (!detached.some((known) => known.program === d.program)) onDetached(d.program, d.reason);
    detached = found;
  }, intervalMs);
  timer.unref();
  return { detached: () => detached, stop: () => clearInterval(timer) };
}
