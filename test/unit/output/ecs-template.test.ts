/**
 * packaging/elasticsearch: the index template and ingest pipeline are valid JSON, and the
 * template maps every field a finding built by the engine carries, with a type its value fits.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { reverseShellFinding } from "./fixtures.js";
import { ecsContainer } from "../../../src/engine/finding.js";

const folder = new URL("../../../packaging/elasticsearch/", import.meta.url).pathname;
const read = (name: string) => JSON.parse(readFileSync(folder + name, "utf8")) as Record<string, unknown>;

interface Mapping {
  type?: string;
  value?: string;
  properties?: Record<string, Mapping>;
}

/** Every leaf of a document as [dotted path, value], array elements under their array's path. */
function leaves(value: unknown, path: string[] = []): [string[], unknown][] {
  if (Array.isArray(value)) return value.flatMap((element) => leaves(element, path));
  if (typeof value === "object" && value !== null) return Object.entries(value).flatMap(([key, child]) => leaves(child, [...path, key]));
  return [[path, value]];
}

/** The mapping that takes the field: its own, or a flattened parent's; undefined when none. */
function mappingOf(root: Mapping, path: string[]): Mapping | undefined {
  let node: Mapping = root;
  for (const key of path) {
    if (node.type === "flattened") return node;
    const next = node.properties?.[key];
    if (next === undefined) return undefined;
    node = next;
  }
  return node;
}

const FITS: Record<string, (value: unknown) => boolean> = {
  keyword: (v) => typeof v === "string" || typeof v === "number",
  constant_keyword: (v) => typeof v === "string",
  wildcard: (v) => typeof v === "string",
  match_only_text: (v) => typeof v === "string",
  date: (v) => typeof v === "string" && !Number.isNaN(Date.parse(v)),
  ip: (v) => typeof v === "string" && /^[0-9a-f.:]+$/i.test(v),
  long: (v) => Number.isInteger(v),
  float: (v) => typeof v === "number",
  boolean: (v) => typeof v === "boolean",
  flattened: () => true,
};

describe("the Elasticsearch/OpenSearch index template", () => {
  const template = read("sockeye-alerts-index-template.json") as { index_patterns: string[]; data_stream: object; template: { settings: { index: { default_pipeline: string } }; mappings: Mapping } };
  const mappings = template.template.mappings;

  it("is a data stream template for logs-sockeye.alerts-*, with the shipped pipeline as its default", () => {
    expect(template.index_patterns).toEqual(["logs-sockeye.alerts-*"]);
    expect(template.data_stream).toEqual({});
    expect(mappings.properties!.data_stream!.properties!.dataset).toEqual({ type: "constant_keyword", value: "sockeye.alerts" });
    expect(template.template.settings.index.default_pipeline).toBe("logs-sockeye.alerts");
  });

  it.each([
    ["on the host", {}],
    ["in a pod's container", ecsContainer({ id: "a".repeat(64), runtime: "containerd", podUid: "0a1b2c3d-4e5f-6789-abcd-ef0123456789" })],
  ])("maps every field of a finding built by the engine, with a type its value fits (%s)", (_where, container) => {
    const finding = { ...reverseShellFinding(), ...container };
    expect(finding.event.kind).toBe("alert");
    const unmapped: string[] = [];
    const misfit: string[] = [];
    for (const [path, value] of leaves(finding)) {
      if (value === null) continue;
      const mapping = mappingOf(mappings, path);
      if (mapping?.type === undefined) unmapped.push(path.join("."));
      else if (!FITS[mapping.type]?.(value)) misfit.push(`${path.join(".")}: ${JSON.stringify(value)} as ${mapping.type}`);
    }
    expect(unmapped).toEqual([]);
    expect(misfit).toEqual([]);
  });

  it("the ingest pipeline is valid JSON and keeps event.kind alert", () => {
    const pipeline = read("sockeye-alerts-ingest-pipeline.json") as { processors: { set?: { field: string; value: string } }[] };
    expect(pipeline.processors.find((processor) => processor.set?.field === "event.kind")?.set?.value).toBe("alert");
  });
});
