/**
 * Importing the built package (npm ci builds dist/) opens no file and loads no addon: no rule
 * exists until a catalog is built, and the host is read only through a host view a caller
 * made. Module loading itself reads the package's .js files; every other fs call is recorded
 * by a preload and must not happen.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const preload = fileURLToPath(new URL("./record-fs.mjs", import.meta.url));
const entry = fileURLToPath(new URL("../../../dist/index.js", import.meta.url));

/** The fs calls `script` makes after the preload, module files left out. */
function fsCallsOf(script: string): string[] {
  const child = spawnSync(process.execPath, ["--import", preload, "--input-type=module", "-e", `${script}\nconsole.log(JSON.stringify(globalThis.fsCalls));`], {
    encoding: "utf8",
    timeout: 20_000,
  });
  expect(child.status, child.stderr).toBe(0);
  const calls = JSON.parse(child.stdout) as string[];
  return calls.filter((call) => !/^promises\.readFile file:/.test(call) && !/\.(c|m)?js$/.test(call));
}

describe("import of the package", () => {
  it("opens no file", () => {
    expect(fsCallsOf(`await import(${JSON.stringify(entry)});`)).toEqual([]);
  });

  it("the recorder sees a read made at import time", () => {
    expect(fsCallsOf(`await import(${JSON.stringify(entry)}); (await import("node:fs")).readFileSync("/proc/self/stat");`)).toContain("readFileSync /proc/self/stat");
  });
});
