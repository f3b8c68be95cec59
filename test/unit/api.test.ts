/**
 * The public API (docs/design.md §13): what package.json `exports` promises exists, the types
 * public members use can be named, and the root stays the curated surface api/sockeye.api.md
 * records. (`npm run lint` compares the reports themselves.)
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, expectTypeOf, it } from "vitest";
import type { z } from "zod";
import * as root from "sockeye";
import type { KernelFeatures, Pipeline, ProgramCandidate, Sensor, SensorOptions } from "sockeye";
import type { sensorOptionsSchema } from "../../src/sensor/options.js";

const here = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));
const packageJson = JSON.parse(readFileSync(here("package.json"), "utf8")) as { exports: Record<string, { types: string; default: string } | string> };
const subpaths = Object.entries(packageJson.exports).filter((entry): entry is [string, { types: string; default: string }] => typeof entry[1] === "object");

describe("package.json exports", () => {
  it("names the root and the four subpaths, each built from its own entry file", () => {
    expect(subpaths.map(([subpath]) => subpath)).toEqual([".", "./outputs", "./eql", "./capture", "./metrics"]);
    for (const [subpath, target] of subpaths) {
      const source = subpath === "." ? "src/index.ts" : `src/entry/${subpath.slice(2)}.ts`;
      expect(existsSync(here(source)), source).toBe(true);
      const built = source.replace(/^src\//, "dist/").replace(/\.ts$/, "");
      expect(target).toEqual({ types: `./${built}.d.ts`, default: `./${built}.js` });
    }
  });

  it("each subpath loads and exports what its report records", async () => {
    const load: Record<string, () => Promise<Record<string, unknown>>> = {
      outputs: () => import("sockeye/outputs"),
      eql: () => import("sockeye/eql"),
      capture: () => import("sockeye/capture"),
      metrics: () => import("sockeye/metrics"),
    };
    expect(Object.keys(load)).toEqual(subpaths.filter(([subpath]) => subpath !== ".").map(([subpath]) => subpath.slice(2)));
    for (const [name, importer] of Object.entries(load)) {
      const module = await importer();
      const report = readFileSync(here(`api/sockeye-${name}.api.md`), "utf8");
      for (const value of Object.keys(module)) expect(report, `${value} of sockeye/${name}`).toMatch(new RegExp(`\\b${value}\\b`));
    }
  });
});

describe("the root export", () => {
  it("holds the runtime values an agent needs and none of the internals it once exported", () => {
    for (const name of ["openSensorSync", "probe", "Pipeline", "ProcessTable", "Engine", "defineRule", "builtinRules", "createTrc101Rule", "loadElasticRules", "loadBuiltinElasticRules", "replayCapture", "JsonLinesOutput", "OutputSet", "FileOutput", "WebhookOutput", "SyslogOutput", "NatsOutput", "SockeyeError", "SensorError", "EVENT_KINDS"]) {
      expect(root, name).toHaveProperty(name);
    }
    for (const name of ["openSensor", "Sensor", "decodeBatch", "sensorOptionsSchema", "RelayGraph", "ProcHoldings", "PreciseStdioJudge", "Spool", "compileEql", "parseEql", "trc101StdioOverSocket", "relay001RelayShell", "relay002CommandRelay"]) {
      expect(root, name).not.toHaveProperty(name);
    }
  });

  it("names the types of Sensor's public members and the options it takes", () => {
    expectTypeOf<Sensor["programs"]>().toEqualTypeOf<ProgramCandidate[]>();
    expectTypeOf<Sensor["features"]>().toEqualTypeOf<KernelFeatures>();
    // The written-out options and the schema that checks them at run time are the same.
    expectTypeOf<SensorOptions>().toEqualTypeOf<z.input<typeof sensorOptionsSchema>>();
  });

  it("has one way to close a sensor, awaited, and an attach that returns nothing to misread", () => {
    expectTypeOf<Sensor["close"]>().returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf<Sensor>().not.toHaveProperty("shutdown");
    expectTypeOf<Pipeline["attach"]>().returns.toEqualTypeOf<void>();
    expectTypeOf<Pipeline["detach"]>().returns.toEqualTypeOf<void>();
  });
});
