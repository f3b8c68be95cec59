/**
 * The layers that judge events read the host only through the host view (src/host/): no file
 * in engine/, rules/, process/ or eql/ imports node's fs or names a /proc path in code, so a
 * replay or a test decides everything they see, and the robustness work can move every host
 * read off the main thread in one place.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const SRC = new URL("../../../src/", import.meta.url).pathname;
const JUDGING_LAYERS = ["engine", "rules", "process", "eql"];
const FS_MODULES = new Set(["fs", "node:fs", "fs/promises", "node:fs/promises"]);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sourceFiles(join(dir, entry.name)) : entry.name.endsWith(".ts") ? [join(dir, entry.name)] : [],
  );
}

/** Every host access in `text`: an fs module imported (statically or not) or a /proc path in a string. */
function hostAccesses(text: string): string[] {
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier !== undefined && ts.isStringLiteral(node.moduleSpecifier)) {
      if (FS_MODULES.has(node.moduleSpecifier.text)) found.push(`imports ${node.moduleSpecifier.text}`);
      return;
    }
    if (ts.isStringLiteralLike(node) || ts.isTemplateHead(node) || ts.isTemplateMiddle(node) || ts.isTemplateTail(node)) {
      if (FS_MODULES.has(node.text)) found.push(`names module ${node.text}`);
      if (/(^|[^\w.])\/proc(\/|$)/.test(node.text)) found.push(`names ${JSON.stringify(node.text)}`);
    }
    ts.forEachChild(node, visit);
  };
  visit(ts.createSourceFile("file.ts", text, ts.ScriptTarget.Latest, true));
  return found;
}

describe("no host I/O outside src/host/", () => {
  it("finds fs imports and /proc strings in code, not in comments", () => {
    expect(hostAccesses('import { readFileSync } from "node:fs";')).toEqual(["imports node:fs"]);
    expect(hostAccesses('const m = await import("fs/promises");')).toEqual(["names module fs/promises"]);
    expect(hostAccesses("const p = `/proc/${pid}/fd`;")).toEqual(['names "/proc/"']);
    expect(hostAccesses('const p = "/proc";')).toEqual(['names "/proc"']);
    expect(hostAccesses("// reads /proc/<pid>/fd\n/** from /proc */ const x = 1;")).toEqual([]);
    expect(hostAccesses('const url = "https://example.org/procedures";')).toEqual([]);
  });

  const files = JUDGING_LAYERS.flatMap((layer) => sourceFiles(join(SRC, layer))).map((file) => relative(SRC, file));
  it.each(files)("%s", (file) => {
    expect(hostAccesses(readFileSync(join(SRC, file), "utf8"))).toEqual([]);
  });
});
