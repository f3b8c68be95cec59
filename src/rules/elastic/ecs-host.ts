/**
 * ECS host fields every Elastic document carries. Elastic's Linux sequences join on
 * `host.id` (`sequence by host.id, process.entity_id …`), so it must be present and stable:
 * the machine id, which is what Elastic Agent reports too (the host view reads it).
 */
import type { ProcessView } from "../../process/process-view.js";

/** The host id the process view knows ("" when none: a replay, a test). */
export function hostIdOf(processes: ProcessView): string {
  return processes.hostId?.() ?? "";
}

/** `host` of an Elastic document; `host.id` is left out when unknown. */
export function ecsHost(hostId: string): Record<string, unknown> {
  return hostId !== "" ? { id: hostId, os: { type: "linux" } } : { os: { type: "linux" } };
}
