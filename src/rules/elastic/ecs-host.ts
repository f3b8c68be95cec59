/**
 * ECS host fields every Elastic document carries. Elastic's Linux sequences join on
 * `host.id` (`sequence by host.id, process.entity_id …`), so it must be present and stable:
 * the machine id (systemd's /etc/machine-id), which is what Elastic Agent reports too.
 */
import { readFileSync } from "node:fs";

let hostIdCache: string | null | undefined;

/** The machine id, read once; undefined where there is none (host.id is then left out). */
export function hostId(): string | undefined {
  if (hostIdCache === undefined) {
    hostIdCache = null;
    // The boot id stands in on hosts without a machine id (some containers): stable until reboot.
    for (const path of ["/etc/machine-id", "/var/lib/dbus/machine-id", "/proc/sys/kernel/random/boot_id"]) {
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
  return hostIdCache ?? undefined;
}

/** `host` of an Elastic document. */
export function ecsHost(): Record<string, unknown> {
  const id = hostId();
  return id !== undefined ? { id, os: { type: "linux" } } : { os: { type: "linux" } };
}
