/**
 * The periodic stats line on stderr: one JSON object, shaped like the daemon's other log
 * lines (`time`, `level`, `message`), so the same log pipeline reads it.
 */
import type { StatsSnapshot } from "./snapshot.js";

/**
 * `previous` is the snapshot of the last line: with it the line carries rates per second
 * over the interval; without it (the first line) only totals.
 */
export function formatStatsLine(current: StatsSnapshot, previous?: StatsSnapshot): string {
  const intervalS = previous !== undefined ? (current.timeMs - previous.timeMs) / 1000 : 0;
  const rates =
    previous !== undefined && intervalS > 0
      ? {
          interval_s: round(intervalS),
          events_per_s: mapValues(current.engine.eventsByKind, (n, kind) => round((n - (previous.engine.eventsByKind[kind] ?? 0)) / intervalS)),
        }
      : {};
  return JSON.stringify({
    time: new Date(current.timeMs).toISOString(),
    level: "info",
    message: "stats",
    ...rates,
    events: { ...current.engine.eventsByKind },
    findings: { ...current.engine.findingsByRule },
    // Why rules stayed quiet (TRC-101: service_handoff, not_a_shell, ...): never silent.
    suppressed: mapValues(current.engine.suppressedByRule, (reasons) => ({ ...reasons })),
    folded: { ...current.engine.foldedByRule },
    ...sequenceTotals(current),
    // What each stateful rule holds now and what its bounds let go (evicted, expired) or its host looks cut short.
    rule_state: mapValues(current.engine.ruleState, (state) => ({ ...state })),
    kernel_lost: mapValues(current.kernel, (hook) => hook.lost),
    // Host reads a user made slow show here first (docs/design.md §9).
    ...(current.daemon !== undefined ? { event_loop_lag_ms: { ...current.daemon.eventLoopLagMs }, workers_replaced: current.daemon.workersReplaced } : {}),
    // A flood's events waiting for their slice of the event loop (Pipeline.attach).
    ...(current.backlogEvents !== undefined ? { backlog_events: current.backlogEvents } : {}),
    kernel_errors: mapValues(current.kernel, (hook) => hook.errors),
    outputs: Object.fromEntries(
      current.outputs.map((output) => [
        output.name,
        {
          written: output.written,
          // Only the reasons that happened: the line stays short and each one stands out.
          dropped: Object.fromEntries(Object.entries(output.dropped).filter(([, n]) => n > 0)),
          queue: output.queueDepth,
          ...(output.retries > 0 ? { retries: output.retries } : {}),
          ...(output.spool !== undefined ? { spool_bytes: output.spool.bytes, spool_age_s: output.spool.oldestAgeS } : {}),
        },
      ]),
    ),
  });
}

/**
 * The sequence rules' partial matches over all of them (per rule in the metrics): how many
 * are held, and how many the memory bound evicted, which means a sequence could be missed.
 * Absent while no sequence rule runs.
 */
function sequenceTotals(snapshot: StatsSnapshot): { sequences?: Record<string, number> } {
  const rules = Object.values(snapshot.engine.sequences);
  if (rules.length === 0) return {};
  const sum = (pick: (stats: (typeof rules)[number]) => number) => rules.reduce((total, stats) => total + pick(stats), 0);
  return {
    sequences: {
      rules: rules.length,
      partials: sum((s) => s.partials),
      matched: sum((s) => s.matched),
      expired: sum((s) => s.expired),
      evicted: sum((s) => s.evicted),
      until_dropped: sum((s) => s.untilDropped),
    },
  };
}

function mapValues<T, U>(record: Readonly<Record<string, T>>, map: (value: T, key: string) => U): Record<string, U> {
  return Object.fromEntries(Object.entries(record).map(([key, value]) => [key, map(value, key)]));
}

/** One decimal: a stats line is read by people. */
function round(n: number): number {
  return Math.round(n * 10) / 10;
}
