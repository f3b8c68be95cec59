/**
 * The import graph of src/ keeps the layers of src/README.md: a folder imports only folders
 * below it (or itself), and no set of files imports each other in a loop, type-only imports
 * included (a type cycle still ties two modules' designs together).
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const SRC = resolve(import.meta.dirname, "../../src");

/** Top to bottom, as src/README.md draws them; one row's folders may not import each other's. */
const LAYERS: string[][] = [
  ["index.ts", "entry"],
  ["cli"],
  ["pipeline"],
  ["config", "metrics", "capture"],
  ["enforce"],
  ["rules", "output"],
  ["engine"],
  ["process", "eql", "service"],
  ["host"],
  ["sensor"],
  ["errors.ts"],
];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? sourceFiles(path) : entry.name.endsWith(".ts") ? [path] : [];
  });
}

/** Relative imports of a file (static, dynamic and type-only), as paths of .ts files under src/. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const specifiers = [...text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)["'](\.{1,2}\/[^"']+)["']/g)].map((m) => m[1]!);
  return specifiers.map((s) => resolve(dirname(file), s.replace(/\.js$/, ".ts")));
}

const top = (file: string) => relative(SRC, file).split("/")[0]!;
const layerOf = (file: string) => LAYERS.findIndex((row) => row.includes(top(file)));

describe("src/ layers", () => {
  const files = sourceFiles(SRC);
  const graph = new Map(files.map((f) => [f, importsOf(f)]));

  it("every top-level folder and file of src/ has a layer", () => {
    expect(files.filter((f) => layerOf(f) === -1).map((f) => relative(SRC, f))).toEqual([]);
  });

  it("imports go downwards only (or within a folder)", () => {
    const upward: string[] = [];
    for (const [file, imports] of graph) {
      for (const target of imports) {
        if (top(target) === top(file)) continue;
        if (layerOf(target) <= layerOf(file)) upward.push(`${relative(SRC, file)} -> ${relative(SRC, target)}`);
      }
    }
    expect(upward).toEqual([]);
  });

  it("no import cycle, type-only ones included", () => {
    const state = new Map<string, "open" | "done">();
    const cycles: string[] = [];
    const visit = (file: string, path: string[]): void => {
      if (state.get(file) === "done") return;
      if (state.get(file) === "open") {
        cycles.push([...path.slice(path.indexOf(file)), file].map((f) => relative(SRC, f)).join(" -> "));
        return;
      }
      state.set(file, "open");
      for (const target of graph.get(file) ?? []) visit(target, [...path, file]);
      state.set(file, "done");
    };
    for (const file of files) visit(file, []);
    expect(cycles).toEqual([]);
  });
});
