/**
 * The rules a configuration asks for: built-in, shipped and the user's, with TRC-101 set
 * from the same config (its extra allowlist entries, the sensor's stdio fds).
 */
import type { Config } from "./config.js";
import { loadRuleCatalog, type RuleCatalog } from "../rules/catalog.js";
import type { StdioAllowEntry } from "../rules/trc-101-stdio-over-socket.js";

export interface CatalogLogger {
  info(message: string, details?: Record<string, unknown>): void;
  warn(message: string, details?: Record<string, unknown>): void;
}

/**
 * Loads the catalog; strict unless `rules.lenient`. `stdioFdMax` defaults to the config's:
 * a daemon that reloads passes the one its running sensor was loaded with.
 */
export function loadConfiguredRules(config: Config, stdioFdMax = config.sensor.stdio_fd_max): RuleCatalog {
  return loadRuleCatalog({
    rulePaths: config.rules.paths,
    lenient: config.rules.lenient,
    builtinElastic: config.rules.shipped_elastic,
    commandRelay: config.rules.command_relay,
    relay001: {
      agents: config.rules.relay_agents.map((a) => ({ executable: a.executable, reason: a.reason, ...(a.unit !== undefined ? { unit: a.unit } : {}) })),
    },
    trc101: {
      profile: config.rules.profile,
      stdioFdMax,
      extraAllowlist: config.rules.trc101_allow.map(
        (entry): StdioAllowEntry => ({
          label: entry.label,
          ...(entry.executable !== undefined ? { executable: entry.executable } : {}),
          ...(entry.name !== undefined ? { name: entry.name } : {}),
          ...(entry.parent_name !== undefined ? { parentName: entry.parent_name } : {}),
        }),
      ),
    },
  });
}

/** What runs and what does not, and why: one warning per rule that is skipped or blind, then a summary. */
export function logRuleCatalog(catalog: RuleCatalog, logger: CatalogLogger): void {
  for (const status of catalog.statuses) {
    if (status.status === "skipped") logger.warn("rule skipped", { source: status.source, reason: status.reason });
    if (status.status === "runs" && status.unprovidedFields !== undefined) {
      logger.warn("rule reads fields sockeye does not provide: conditions on them never hold", { rule: status.id, fields: status.unprovidedFields });
    }
  }
  logger.info("rules loaded", {
    running: catalog.rules.map((rule) => rule.meta.id),
    skipped: catalog.statuses.filter((s) => s.status === "skipped").length,
  });
}
