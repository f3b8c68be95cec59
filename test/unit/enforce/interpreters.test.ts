import { afterEach, describe, expect, it } from "vitest";
import { copyFileSync, mkdtempSync, rmSync, statSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findKernelInterpreters } from "../../../src/enforce/interpreters.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("the kernel's interpreters", () => {
  it("an allowlisted name spares its file under every name it has; other interpreters stay", () => {
    const bin = mkdtempSync(join(tmpdir(), "sockeye-interp-"));
    dirs.push(bin);
    copyFileSync("/bin/true", join(bin, "python3.11"));
    symlinkSync("python3.11", join(bin, "python3"));
    copyFileSync("/bin/true", join(bin, "perl"));
    const ino = (name: string) => Number(statSync(join(bin, name)).ino);
    const all = findKernelInterpreters([bin]);
    expect(all.exes.map(([, i]) => i).sort()).toEqual([ino("perl"), ino("python3.11")].sort());
    expect(all.names).toContain("python3");
    const spared = findKernelInterpreters([bin], new Set(["python3"]));
    expect(spared.exes.map(([, i]) => i)).toEqual([ino("perl")]);
    expect(spared.names).not.toContain("python3");
    expect(spared.names).toContain("python3.11");
  });
});
