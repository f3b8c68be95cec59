/**
 * Meta-test: every rule file in src/rules/ exports a factory whose rule builtin.ts registers,
 * and no rule instance (rules are made when a catalog is built, never at import); every
 * registered rule has a unique id and a doc page docs/rules/<id>.md that names it.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { builtinRules, type AnyRule } from "sockeye";

const rulesDir = new URL("../../../src/rules/", import.meta.url);
const docsDir = new URL("../../../docs/rules/", import.meta.url);
// Every built-in rule, the opt-in ones included.
const registered = builtinRules({ commandRelay: true });

function isRule(value: unknown): value is AnyRule {
  return typeof value === "object" && value !== null && "meta" in value && "kinds" in value && "evaluate" in value;
}

describe("built-in rule registry", () => {
  it("has rules, with unique ids", () => {
    const ids = registered.map((rule) => rule.meta.id);
    expect(ids.length).toBeGreaterThan(0);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it.each(registered.map((rule) => [rule.meta.id, rule] as const))("%s has a doc page naming it", (id, rule) => {
    const doc = new URL(`${id}.md`, docsDir);
    expect(existsSync(doc), `docs/rules/${id}.md`).toBe(true);
    const text = readFileSync(doc, "utf8");
    expect(text).toContain(id);
    expect(text).toContain(rule.meta.name);
  });

  const ruleFiles = readdirSync(rulesDir).filter((file) => file.endsWith(".ts") && !["builtin.ts", "catalog.ts"].includes(file));

  it.each(ruleFiles)("%s exports a rule factory that builtin.ts registers, and no rule instance", async (file) => {
    const module = (await import(new URL(file, rulesDir).href)) as Record<string, unknown>;
    expect(Object.values(module).filter(isRule)).toEqual([]);
    const factories = Object.entries(module).filter(([name, value]) => /^create\w+Rule$/.test(name) && typeof value === "function");
    expect(factories.length).toBeGreaterThan(0);
    const registeredIds = new Set(registered.map((rule) => rule.meta.id));
    for (const [, factory] of factories) expect(registeredIds).toContain((factory as () => AnyRule)().meta.id);
  });
});
