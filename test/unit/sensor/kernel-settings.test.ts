import { describe, expect, it } from "vitest";
import { loadBinding } from "../../../src/sensor/binding.js";
import { SHELL_NAMES } from "../../../src/sensor/shells.js";
import { interpreterFamilyOfName } from "../../../src/rules/stdio/interpreters.js";

describe("kernel settings: one home, every one set", () => {
  it("the loader writes every const volatile of the BPF object (its .rodata, read from BTF)", () => {
    const { rodata, written } = loadBinding().kernelSettings();
    // Guards the BTF walk itself: these have been settings since the first release.
    expect(rodata).toEqual(expect.arrayContaining(["stdio_fd_max", "wakeup_interval_ns"]));
    expect([...written].sort()).toEqual([...rodata].sort());
  });

  it("the kernel's wakeup shells are the rules' shell family, and every name fits a comm", () => {
    for (const name of SHELL_NAMES) {
      expect([name, interpreterFamilyOfName(name)]).toEqual([name, "shell"]);
      expect(Buffer.byteLength(name)).toBeLessThan(16);
    }
  });
});
