import { describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadBinding } from "../../../src/sensor/binding.js";
import { SensorError } from "../../../src/sensor/errors.js";

describe("binding loader errors", () => {
  it("a missing addon says how to build it", () => {
    const err = (() => { try { loadBinding("/nonexistent"); } catch (e) { return e; } })();
    expect(err).toBeInstanceOf(SensorError);
    expect(err).toMatchObject({ code: "SOCKEYE_NO_BINDING", message: expect.stringMatching(/is missing\): run 'npm run build'/) as unknown });
  });

  it("an addon that fails to load says to rebuild it, in one line", () => {
    const root = mkdtempSync(join(tmpdir(), "sockeye-"));
    mkdirSync(join(root, "build", "Release"), { recursive: true });
    writeFileSync(join(root, "build", "Release", "sockeye.node"), "not an ELF file");
    const err = (() => { try { loadBinding(root); } catch (e) { return e as SensorError; } })();
    expect(err).toMatchObject({ code: "SOCKEYE_BINDING_LOAD_FAILED" });
    expect(err!.message).toMatch(/failed to load .* rebuild it with 'npm run build'/);
    expect(err!.message).not.toContain("\n");
  });
});
