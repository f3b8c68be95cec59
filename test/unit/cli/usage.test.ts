import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";

// The built CLI (npm ci builds dist/): usage errors are one line and exit 2, no stack trace.
const cli = (...args: string[]) => spawnSync(process.execPath, ["dist/cli/main.js", ...args], { encoding: "utf8" });

describe("sockeye CLI usage errors", () => {
  it.each([
    [["bogus"], /unknown command 'bogus'/],
    [["run", "--stdio-fd-max", "abc"], /--stdio-fd-max must be an integer from 0 to 1023/],
    [["run", "--nope"], /unknown option '--nope'/],
    [["probe", "extra"], /too many arguments/],
  ])("%j", (args, message) => {
    const r = cli(...args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stdout).toBe("");
  });

  it("--help lists the commands and exits 0", () => {
    const r = cli("--help");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/probe/);
    expect(r.stdout).toMatch(/run/);
  });
});
