import { describe, expect, it } from "vitest";
import { loadBinding } from "../../../src/sensor/binding.js";
import { LAYOUT, COMM_LEN, UNIX_PATH_LEN, FILENAME_MAX, ARGS_MAX, STDIO_FDS, HOOKS } from "../../../src/sensor/layout.js";

// The decoder's offsets against offsetof()/sizeof() compiled from bpf/sockeye_events.h.
describe("layout: src/sensor/layout.ts matches bpf/sockeye_events.h", () => {
  const native = loadBinding().layout;

  for (const [struct, fields] of Object.entries(LAYOUT)) {
    it(`${struct}: every size and offset`, () => {
      expect(native[struct]).toBeDefined();
      expect(fields).toEqual(native[struct]);
    });
  }

  it("constants", () => {
    expect(native.constants).toEqual({ COMM_LEN, UNIX_PATH_LEN, FILENAME_MAX, ARGS_MAX, STDIO_FDS, HOOK_COUNT: HOOKS.length });
  });

  it("every struct is a multiple of 8 bytes (no implicit tail padding between records)", () => {
    for (const [struct, fields] of Object.entries(LAYOUT)) expect([struct, fields.sizeof % 8]).toEqual([struct, 0]);
  });
});
