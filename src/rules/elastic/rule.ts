/**
 * Runs a loaded Elastic EQL rule (loader.ts) as a sockeye rule over exec events: each exec
 * becomes an ECS process/start document (ecs-exec.ts) and the compiled query decides.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { defineRule, type Rule } from "../../engine/rule.js";
import { execEcsDocument, execProcessName } from "./ecs-exec.js";
import { loadElasticRules, type LoadedElasticRule } from "./loader.js";

/** A sockeye rule (kinds ["exec"]) that detects when the Elastic query matches. */
export function elasticRule(loaded: LoadedElasticRule): Rule<"exec"> {
  const { compiled } = loaded;
  // Most Linux rules pin process.name (the seed: setsid or nohup): an exec of any other
  // program cannot match, so its ECS document is never built for this rule.
  const names = compiled.requiredValues("process.name");
  return defineRule({
    meta: loaded.meta,
    kinds: ["exec"],
    evaluate(event, ctx) {
      if (names !== undefined && !names.has(execProcessName(event))) return null;
      return compiled.test(execEcsDocument(event, ctx.processes)) ? {} : null;
    },
  });
}

/** The package root: the nearest directory upwards holding sockeye's package.json. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, "utf8")) as { name?: unknown }).name === "sockeye") return dir;
      } catch {
        // Not ours; keep looking.
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error("sockeye: cannot find the package root (package.json) for rules/elastic");
    dir = parent;
  }
}

/** Directory of the Elastic rules shipped with sockeye (rules/elastic in the package). */
export function builtinElasticRulesDir(): string {
  return join(packageRoot(), "rules", "elastic");
}

/** The shipped Elastic rules, strictly loaded: a shipped rule that cannot run is a bug. */
export function loadBuiltinElasticRules(): Rule<"exec">[] {
  return loadElasticRules([builtinElasticRulesDir()]).map((result) => elasticRule(result.rule!));
}
