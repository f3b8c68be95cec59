import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { JsonLinesOutput, PrettyOutput } from "sockeye";
import { formatPretty } from "sockeye/outputs";
import { reverseShellFinding } from "./fixtures.js";

/** A stream that keeps what it is given; `hold` keeps each write's callback until release(). */
function sink(options: { hold?: boolean; fail?: string; isTTY?: boolean } = {}) {
  const chunks: string[] = [];
  const held: (() => void)[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (options.fail !== undefined) return callback(new Error(options.fail));
      chunks.push(chunk.toString());
      if (options.hold === true) held.push(() => callback());
      else callback();
    },
  });
  if (options.isTTY !== undefined) Object.assign(stream, { isTTY: options.isTTY });
  return {
    stream,
    text: () => chunks.join(""),
    release: () => held.splice(0).forEach((done) => done()),
  };
}

describe("json-lines output", () => {
  it("writes each finding as exactly its JSON and a newline", async () => {
    const out = sink();
    const output = new JsonLinesOutput({ stream: out.stream });
    await output.open();
    const finding = reverseShellFinding();
    output.write([finding, finding]);
    expect(await output.flush(1000)).toEqual({ complete: true, abandoned: 0 });
    const line = JSON.stringify(finding);
    expect(out.text()).toBe(`${line}\n${line}\n`);
    // The line is the ECS document of docs/design.md §5, nested, not flattened.
    expect(JSON.parse(line)).toMatchObject({
      "@timestamp": "2026-11-22T10:00:00.000Z",
      event: { kind: "alert" },
      rule: { id: "TRC-101" },
      process: { pid: 4242, name: "bash", parent: { pid: 4000, name: "sshd" } },
      destination: { ip: "10.0.0.66", port: 4444 },
      finding: { "IP address": "10.0.0.66", Port: "4444", "File descriptor": 0 },
    });
    expect(output.stats()).toMatchObject({ name: "json-lines", type: "json-lines", written: 2, queueDepth: 0 });
  });

  it("bounds what waits for a slow reader and counts the newest lines it drops", async () => {
    const out = sink({ hold: true });
    const finding = reverseShellFinding();
    const lineBytes = Buffer.byteLength(`${JSON.stringify(finding)}\n`);
    const output = new JsonLinesOutput({ stream: out.stream, maxBufferedBytes: 3 * lineBytes });
    await output.open();
    output.write(Array(10).fill(finding)); // 3 queued then in flight, 7 dropped
    output.write(Array(10).fill(finding)); // 3 wait behind the held write, 7 dropped
    expect(output.stats()).toMatchObject({ written: 0, queueDepth: 6, dropped: { queue_full: 14 } });
    out.release();
    await new Promise((resolve) => setImmediate(resolve));
    out.release();
    expect(await output.flush(1000)).toEqual({ complete: true, abandoned: 0 });
    expect(out.text().split("\n").filter(Boolean)).toHaveLength(6);
    expect(output.stats()).toMatchObject({ written: 6, queueDepth: 0, dropped: { queue_full: 14 } });
  });

  it("when it must drop, drops the lowest severity first and never an incident it already started reporting", async () => {
    const out = sink({ hold: true });
    const base = reverseShellFinding();
    const finding = (name: string, severity: "low" | "high", incident: string) =>
      ({ ...base, event: { ...base.event, id: name }, rule: { ...base.rule, severity }, process: { ...base.process, entity_id: incident } }) as typeof base;
    const lineBytes = Buffer.byteLength(`${JSON.stringify(finding("a", "high", "incident-0"))}\n`);
    const output = new JsonLinesOutput({ stream: out.stream, maxBufferedBytes: 3 * lineBytes });
    await output.open();
    output.write([finding("a", "high", "incident-0")]); // in flight, held
    output.write([finding("l1", "low", "incident-1"), finding("l2", "low", "incident-2"), finding("l3", "low", "incident-3")]); // the queue is full
    output.write([finding("h", "high", "incident-4")]); // takes the place of the newest low one, l3
    output.write([finding("l4", "low", "incident-5")]); // nothing lower to drop: dropped itself
    output.write([finding("a2", "low", "incident-0")]); // incident-0 is being reported: l2 makes room
    expect(output.stats()).toMatchObject({ queueDepth: 4, dropped: { queue_full: 3 } });
    for (let i = 0; i < 3; i++) {
      out.release();
      await new Promise((resolve) => setImmediate(resolve));
    }
    out.release();
    expect(await output.flush(1000)).toEqual({ complete: true, abandoned: 0 });
    const delivered = out.text().split("\n").filter(Boolean).map((line) => (JSON.parse(line) as { event: { id: string } }).event.id);
    expect(delivered).toEqual(["a", "l1", "h", "a2"]);
  });

  it("drops what a stuck reader still holds at the flush deadline, counted as flush_timeout", async () => {
    const output = new JsonLinesOutput({ stream: sink({ hold: true }).stream });
    await output.open();
    output.write(Array(4).fill(reverseShellFinding()));
    expect(await output.flush(20)).toEqual({ complete: false, abandoned: 4 });
    expect(output.stats()).toMatchObject({ written: 0, queueDepth: 0, dropped: { flush_timeout: 4 } });
  });

  it("counts a failing stream's lines as write_error without throwing", async () => {
    const output = new JsonLinesOutput({ stream: sink({ fail: "EPIPE: broken pipe" }).stream });
    await output.open();
    output.write([reverseShellFinding()]);
    await output.flush(1000);
    expect(output.stats()).toMatchObject({ written: 0, dropped: { write_error: 1 }, lastError: "EPIPE: broken pipe" });
  });

  it("counts findings written before open or after close as closed", async () => {
    const output = new JsonLinesOutput({ stream: sink().stream });
    output.write([reverseShellFinding()]);
    await output.open();
    await output.close();
    output.write([reverseShellFinding(), reverseShellFinding()]);
    expect(output.stats().dropped.closed).toBe(3);
  });

  it("refuses to open on a stream that is already ended", async () => {
    const { stream } = sink();
    stream.end();
    await expect(new JsonLinesOutput({ stream, name: "stdout" }).open()).rejects.toThrow(
      /^output stdout: the stream is not writable$/,
    );
  });
});

describe("pretty output", () => {
  const finding = reverseShellFinding();
  const plain =
    "2026-11-22T10:00:00.000Z HIGH     Process standard input/output over socket detected" +
    "  bash[4242] ← sshd[4000]  uid=1000  → 10.0.0.66:4444  bash -i";

  it("formats one readable line without colour", () => {
    expect(formatPretty(finding, { color: false })).toBe(plain);
  });

  it("colours the severity, dims the time and bolds the rule and destination", () => {
    const coloured = formatPretty(finding, { color: true });
    expect(coloured).toBe(
      "\u001b[2m2026-11-22T10:00:00.000Z\u001b[0m \u001b[31mHIGH    \u001b[0m " +
        "\u001b[1mProcess standard input/output over socket detected\u001b[0m" +
        "  bash[4242] ← sshd[4000]  uid=1000  → \u001b[1m10.0.0.66:4444\u001b[0m  bash -i",
    );
    // eslint-disable-next-line no-control-regex -- strips the colours' escape sequences
    expect(coloured.replace(/\u001b\[[0-9;]*m/g, "")).toBe(plain);
  });

  it("brackets IPv6 destinations and leaves out a destination the finding lacks", () => {
    expect(formatPretty(reverseShellFinding({ address: "::1" }), { color: false })).toContain("→ [::1]:4444");
    const { destination: _destination, ...withoutDestination } = finding;
    expect(formatPretty(withoutDestination, { color: false })).not.toContain("→");
  });

  it("truncates long command lines and escapes control characters an attacker put in argv", () => {
    const long = reverseShellFinding({ args: ["bash", "-c", "x".repeat(200)] });
    const line = formatPretty(long, { color: false, maxCommandLine: 20 });
    expect(line.endsWith("  bash -c xxxxxxxxxxx…")).toBe(true);
    const hostile = reverseShellFinding({ args: ["bash", "\u001b[2J\u001b]0;owned\u0007"] });
    const text = formatPretty(hostile, { color: false });
    expect(text).toContain("bash \\x1b[2J\\x1b]0;owned\\x07");
    // eslint-disable-next-line no-control-regex -- no control character may reach the terminal
    expect(text).not.toMatch(/[\u0000-\u001f]/);
  });

  it("escapes bidi overrides and line separators, which reorder or split what the analyst reads", () => {
    // "evil\u202Eexe.txt" shows as "eviltxt.exe"; U+2028 starts a new line on many terminals.
    const hostile = reverseShellFinding({ args: ["bash", "evil\u202eexe.txt", "a\u2028b", "\u2066x\u2069", "\u200f\u061c", "\u0085"] });
    const text = formatPretty(hostile, { color: false, maxCommandLine: 200 });
    expect(text).toContain("bash evil\\u202eexe.txt a\\u2028b \\u2066x\\u2069 \\u200f\\u061c \\x85");
    expect(text).not.toMatch(/[\u0080-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/);
  });

  it.each([
    { isTTY: true, env: {}, mode: "auto", coloured: true },
    { isTTY: true, env: { NO_COLOR: "1" }, mode: "auto", coloured: false },
    { isTTY: true, env: { NO_COLOR: "" }, mode: "auto", coloured: true },
    { isTTY: true, env: { TERM: "dumb" }, mode: "auto", coloured: false },
    { isTTY: false, env: {}, mode: "auto", coloured: false },
    { isTTY: false, env: { NO_COLOR: "1" }, mode: "always", coloured: true },
    { isTTY: true, env: {}, mode: "never", coloured: false },
  ] as const)("colour: tty=$isTTY env=$env mode=$mode → $coloured", async ({ isTTY, env, mode, coloured }) => {
    const out = sink({ isTTY });
    const output = new PrettyOutput({ stream: out.stream, color: mode, env });
    await output.open();
    output.write([finding]);
    await output.flush(1000);
    expect(out.text().includes("\u001b[")).toBe(coloured);
    // eslint-disable-next-line no-control-regex -- strips the colours' escape sequences
    expect(out.text().replace(/\u001b\[[0-9;]*m/g, "")).toBe(`${plain}\n`);
  });
});
