import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FileOutput, JsonLinesOutput, OutputSet, WebhookOutput } from "sockeye";
import { numberedFindings } from "./fixtures.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "sockeye-output-set-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function collector() {
  let text = "";
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      text += chunk.toString();
      callback();
    },
  });
  return { stream, text: () => text };
}

describe("OutputSet", () => {
  it("writes every batch to each output and flushes them all", async () => {
    const out = collector();
    const path = join(dir, "findings.jsonl");
    const set = new OutputSet([new JsonLinesOutput({ stream: out.stream }), new FileOutput({ path })]);
    await set.open();
    const findings = numberedFindings(3);
    set.write(findings);
    expect(await set.close(2000)).toEqual({
      "json-lines": { complete: true, abandoned: 0 },
      file: { complete: true, abandoned: 0 },
    });
    const expected = findings.map((finding) => `${JSON.stringify(finding)}\n`).join("");
    expect(out.text()).toBe(expected);
    expect(await readFile(path, "utf8")).toBe(expected);
    expect(set.stats().map((stats) => [stats.name, stats.written])).toEqual([
      ["json-lines", 3],
      ["file", 3],
    ]);
  });

  it("fails to open naming the output that failed, and closes the ones already open", async () => {
    const first = new JsonLinesOutput({ stream: collector().stream });
    const set = new OutputSet([
      first,
      new FileOutput({ path: join(dir, "missing", "f.jsonl"), name: "archive" }),
      new WebhookOutput({ url: "http://127.0.0.1:1/" }),
    ]);
    await expect(set.open()).rejects.toThrow(`output archive: directory ${dir}/missing does not exist`);
    first.write(numberedFindings(1));
    expect(first.stats().dropped.closed).toBe(1);
  });

  it("refuses two outputs with one name: their counts would merge", () => {
    expect(() => new OutputSet([new JsonLinesOutput(), new JsonLinesOutput()])).toThrow(
      'two outputs share the name "json-lines"',
    );
  });
});
