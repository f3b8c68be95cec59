/**
 * ECS host fields every Elastic document carries. Elastic's Linux sequences join on
 * `host.id` (`sequence by host.id, process.entity_id …`), so it must be present and stable:
 * the machine id (systemd's /etc/machine-id), which is what Elastic Agent reports too.
 */
import { readFileSync } from "node:fs";

let hostIdCache: string | null | undefined;

/**
 * The machine id, read once; the host's boot id stands in on hosts without one (some
 * containers: stable until reboot); undefined when neither is known (host.id is then left out).
 */
export function hostId(bootId: string): string | undefined {
  if (hostIdCache === undefined) {
    hostIdCache = null;
    for (const path of ["/etc/machine-id", "/var/lib/dbus/machine-id"]) {
      try {
        const id = readFileSync(path, "utf8").trim().replace(/-/g, "");
        if (/^[0-9a-f]{32}$/i.test(id)) {
          hostIdCache = id;
          break;
        }
      } catch {
        // Try the next place.
      }
    }
  }
  return hostIdCache ?? (/^[0-9a-f]{32}$/i.test(bootId) ? bootId : undefined);
}

/** `host` of an Elastic document. */
export function ecsHost(bootId: string): Record<string, unknown> {
  const id = hostId(bootId);
  return id !== undefined ? { id, os: { type: "linux" } } : { os: { type: "linux" } };
}
