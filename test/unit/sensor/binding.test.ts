import { describe, expect, it } from "vitest";
import { writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadBinding } from "../../../src/sensor/binding.js";
import { SensorError } from "../../../src/sensor/errors.js";

describe("binding loader errors", () => {
  it("a missing addon says how to build it", () => {
    const err = (() => { try { loadBinding("/nonexistent/sockeye.node"); } catch (e) { return e; } })();
    expect(err).toBeInstanceOf(SensorError);
    expect(err).toMatchObject({ code: "NO_BINDING", message: expect.stringMatching(/is missing\): run 'npm run build'/) as unknown });
  });

  it("an addon that fails to load says to rebuild it, in one line", () => {
    const bogus = join(mkdtempSync(join(tmpdir(), "sockeye-")), "sockeye.node");
    writeFileSync(bogus, "not an ELF file");
    const err = (() => { try { loadBinding(bogus); } catch (e) { return e as SensorError; } })();
    expect(err).toMatchObject({ code: "BINDING_LOAD_FAILED" });
    expect(err!.message).toMatch(/failed to load .* rebuild it with 'npm run build'/);
    expect(err!.message).not.toContain("\n");
  });
});
