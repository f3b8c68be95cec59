/**
 * The behavioural cases of the kernel tier (test/kernel/evasions.test.ts, benign.test.ts),
 * replayed from their captures (`sockeye run --capture`, cut to each case's process tree by
 * test/fixtures/behave/record.mjs) through the default rules and RELAY-002 opted in, with no
 * host to look at (OFFLINE_HOST: as `sockeye replay` runs). Prints a per-rule scorecard
 * (caught / missed / false) and holds the default configuration to every attack caught with
 * exactly one finding and every benign case at zero.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { Engine, OFFLINE_HOST, ProcessTable, builtinRules, type AnyRule, type Finding } from "sockeye";
import { readCapture } from "sockeye/capture";
import { silentLogger } from "../engine/fixtures.js";

const DIR = new URL("../../fixtures/behave/", import.meta.url);
const cases = JSON.parse(readFileSync(new URL("cases.json", DIR), "utf8")) as Record<string, "caught" | "quiet">;

async function replay(name: string, rules: AnyRule[]): Promise<Finding[]> {
  const engine = new Engine({ rules, processes: new ProcessTable({ host: OFFLINE_HOST }), hostName: "replay", logger: silentLogger });
  const findings: Finding[] = [];
  for await (const event of readCapture(new URL(`${name}.jsonl`, DIR).pathname)) findings.push(...engine.handle(event));
  return findings;
}

describe("behavioural captures replayed in the unit tier", () => {
  it("has attacks and benign cases to replay", () => {
    expect(Object.values(cases)).toContain("caught");
    expect(Object.values(cases)).toContain("quiet");
  });

  it("default rules: every attack caught with exactly one finding, every benign case at zero; scorecard per rule", async () => {
    const ruleIds = [...builtinRules({ commandRelay: true }).map((r) => r.meta.id)];
    const score = new Map(ruleIds.map((id) => [id, { caught: 0, missed: 0, false: 0 }]));
    const defaults = { caught: 0, missed: 0, false: 0 };
    const perCase: string[] = [];
    for (const [name, expected] of Object.entries(cases)) {
      const byDefault = await replay(name, builtinRules());
      const relay002 = await replay(name, builtinRules({ commandRelay: true }).filter((r) => r.meta.id === "RELAY-002"));
      const fired = new Set([...byDefault, ...relay002].map((f) => f.rule.id));
      for (const id of ruleIds) {
        const s = score.get(id)!;
        if (expected === "caught") {
          if (fired.has(id)) s.caught++;
          else s.missed++;
        } else if (fired.has(id)) s.false++;
      }
      if (expected === "caught") {
        if (byDefault.length > 0) defaults.caught++;
        else defaults.missed++;
      } else if (byDefault.length > 0) defaults.false++;
      const by = byDefault.map((f) => `${f.rule.id}(${(f as unknown as { sockeye?: { verdict?: { identified_by?: string } } }).sockeye?.verdict?.identified_by ?? "-"})`);
      perCase.push(`${name.padEnd(30)} ${expected.padEnd(7)} default: [${by.join(", ")}]  RELAY-002 opt-in: ${relay002.length}`);
      expect(byDefault.length, `${name}: ${byDefault.map((f) => f.rule.id).join(", ")}`).toBe(expected === "caught" ? 1 : 0);
    }
    const rows = [...score].map(([id, s]) => `${id.padEnd(12)} ${String(s.caught).padStart(6)} ${String(s.missed).padStart(6)} ${String(s.false).padStart(6)}`);
    console.log([
      "behavioural captures, per case:", ...perCase, "",
      "scorecard      caught missed  false",
      ...rows,
      `${"default".padEnd(12)} ${String(defaults.caught).padStart(6)} ${String(defaults.missed).padStart(6)} ${String(defaults.false).padStart(6)}`,
    ].join("\n"));
    expect(defaults).toEqual({ caught: Object.values(cases).filter((e) => e === "caught").length, missed: 0, false: 0 });
  });
});
