import type { RuleStatus } from "../rules/catalog.js";

/** The human-readable form of `sockeye rules`: one line per rule, reasons indented below. */
export function formatRuleStatuses(statuses: readonly RuleStatus[]): string {
  const lines = ["status    kind        id                                    name / source"];
  for (const s of statuses) {
    lines.push(`${s.status.padEnd(9)} ${s.kind.padEnd(11)} ${(s.id ?? "-").padEnd(37)} ${s.name ?? ""}`);
    lines.push(`${" ".repeat(22)}${s.source}`);
    if (s.reason !== undefined) lines.push(`${" ".repeat(22)}${s.reason}`);
    if (s.profile !== undefined) lines.push(`${" ".repeat(22)}profile: ${s.profile}`);
    if (s.neverFires !== undefined) lines.push(`${" ".repeat(22)}never fires: ${s.neverFires}`);
    for (const note of s.notes ?? []) lines.push(`${" ".repeat(22)}note: ${note}`);
    if (s.unprovidedFields !== undefined) lines.push(`${" ".repeat(22)}never sees (sockeye does not provide): ${s.unprovidedFields.join(", ")}`);
  }
  const runs = statuses.filter((s) => s.status === "runs").length;
  const blind = statuses.filter((s) => s.status === "runs" && s.neverFires !== undefined).length;
  lines.push("", `${runs} of ${statuses.length} run${blind > 0 ? `, ${blind} of them can never fire` : ""}`);
  return `${lines.join("\n")}\n`;
}
