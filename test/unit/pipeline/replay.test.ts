import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { createWriteStream } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { CaptureLineError, Pipeline, builtinRules, replayCapture, type MalformedLine, type SensorEvent } from "sockeye";
import { CaptureWriter, captureLine, openCaptureFile, readCapture } from "sockeye/capture";
import { connect, dup, exec, exit, fork } from "../engine/fixtures.js";

const lines = (...text: string[]) => Readable.from([text.join("\n")]);

describe("replay", () => {
  it("replays a capture into findings", async () => {
    const pipeline = new Pipeline({ rules: builtinRules(), hostName: "h" });
    const capture = lines(captureLine(exec({ filename: "/bin/bash" })), captureLine(dup({ newfd: 0 })));
    const findings: string[] = [];
    const report = await replayCapture(pipeline, capture, { onFinding: (finding) => findings.push(finding.rule.id) });
    expect(findings).toEqual(["TRC-101"]);
    expect(report).toEqual({ events: 2, findings: 1, malformedCount: 0, malformed: [] });
  });

  it("counts and reports malformed lines with their line numbers, and keeps going", async () => {
    const pipeline = new Pipeline({ rules: builtinRules() });
    const capture = lines(
      JSON.stringify(fork()),
      "{not json",
      "",
      JSON.stringify({ ...connect({ fd: 0 }), fd: "zero" }),
      "[1, 2]",
      JSON.stringify({ kind: 7 }),
      JSON.stringify(dup({ newfd: 1 })),
    );
    const seen: MalformedLine[] = [];
    const report = await replayCapture(pipeline, capture, { onMalformed: (line) => seen.push(line) });
    expect(report.malformed.map((line) => line.lineNumber)).toEqual([2, 4, 5, 6]);
    expect(report.malformed[0]?.reason).toMatch(/^not JSON/);
    expect(report.malformed[1]?.reason).toBe("not a valid connect event: fd: Expected number, received string");
    expect(report.malformed[2]?.reason).toBe("not a JSON object");
    expect(report.malformed[3]?.reason).toBe("no string field `kind`");
    expect(seen).toEqual(report.malformed);
    expect(report).toMatchObject({ events: 2, findings: 1, malformedCount: 4 });
    expect(pipeline.engine.stats().dropped.malformed_line).toBe(4);
  });

  it("stops at the first malformed line with a CaptureLineError in strict mode", async () => {
    const pipeline = new Pipeline({ rules: builtinRules() });
    const capture = lines(JSON.stringify(fork()), JSON.stringify(fork()), "garbage");
    const failure = await replayCapture(pipeline, capture, { strict: true }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(CaptureLineError);
    expect(failure).toMatchObject({ lineNumber: 3, code: "SOCKEYE_CAPTURE_LINE" });
    expect((failure as Error).message).toMatch(/^capture line 3: not JSON/);
  });

  /** Line 2 is 2 MiB of "x", read in 64 KiB chunks as a file would be, between two events. */
  function overlongCapture(): Readable {
    return Readable.from(
      (function* () {
        yield Buffer.from(`${JSON.stringify(fork())}\n`);
        for (let i = 0; i < 32; i++) yield Buffer.alloc(1 << 16, "x");
        yield Buffer.from(`\n${JSON.stringify(fork())}\n`);
      })(),
    );
  }

  it("bounds a line at 1 MiB: a longer one is malformed, named by its number, and the reading goes on", async () => {
    const pipeline = new Pipeline({ rules: builtinRules() });
    const report = await replayCapture(pipeline, overlongCapture());
    expect(report).toMatchObject({ events: 2, malformedCount: 1, malformed: [{ lineNumber: 2, reason: "longer than 1 MiB" }] });
  });

  it("stops at a line over 1 MiB in strict mode with one line naming it", async () => {
    const pipeline = new Pipeline({ rules: builtinRules() });
    const failure = await replayCapture(pipeline, overlongCapture(), { strict: true }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(CaptureLineError);
    expect((failure as Error).message).toBe("capture line 2: longer than 1 MiB");
  });

  // JSON.parse reads 1e400 as Infinity; a time past the Date range made `new Date()` throw
  // from inside a rule, with no line number.
  it.each([
    ["timeMs", '{"timeMs":1e20}', /^not a valid socket_dup event: timeMs: Number must be less than or equal to 8640000000000000/],
    ["timeNs", '{"timeNs":1e400}', /^not a valid socket_dup event: timeNs: Number must be finite/],
    ["task.cgroupId", '{"task":{"pid":1,"tid":1,"ppid":0,"uid":0,"gid":0,"cgroupId":-1,"startNs":0,"comm":"a","parentComm":"b"}}', /task\.cgroupId: Number must be greater than or equal to 0/],
    ["task.startNs", '{"task":{"pid":1,"tid":1,"ppid":0,"uid":0,"gid":0,"cgroupId":0,"startNs":1.5,"comm":"a","parentComm":"b"}}', /task\.startNs: Expected integer, received float/],
    ["task.pid", '{"task":{"pid":4294967296,"tid":1,"ppid":0,"uid":0,"gid":0,"cgroupId":0,"startNs":0,"comm":"a","parentComm":"b"}}', /task\.pid: Number must be less than or equal to 4294967295/],
    ["task.uid", '{"task":{"pid":1,"tid":1,"ppid":0,"uid":-2,"gid":0,"cgroupId":0,"startNs":0,"comm":"a","parentComm":"b"}}', /task\.uid: Number must be greater than or equal to 0/],
    ["newfd", '{"newfd":1e12}', /newfd: Number must be less than or equal to 2147483647/],
    ["state", '{"state":300}', /state: Number must be less than or equal to 255/],
    ["socketIno", '{"socketIno":1e30}', /socketIno: Number must be less than or equal to 18446744073709552000/],
  ])("refuses an out-of-range %s with its line number, after writing the findings of the lines before it", async (_field, override, reason) => {
    const pipeline = new Pipeline({ rules: builtinRules() });
    // The override's keys come last: JSON.parse keeps a repeated key's last value.
    const bad = JSON.stringify(dup({ newfd: 1 })).replace(/\}$/, `,${override.slice(1)}`);
    const capture = lines(captureLine(exec({ filename: "/bin/bash" })).trimEnd(), captureLine(dup({ newfd: 0 })).trimEnd(), bad);
    const findings: string[] = [];
    const report = await replayCapture(pipeline, capture, { onFinding: (finding) => findings.push(finding.rule.id) });
    expect(findings).toEqual(["TRC-101"]);
    expect(report.malformed).toHaveLength(1);
    expect(report.malformed[0]?.lineNumber).toBe(3);
    expect(report.malformed[0]?.reason).toMatch(reason);

    const strictPipeline = new Pipeline({ rules: builtinRules() });
    const strictFindings: string[] = [];
    const capture2 = lines(captureLine(exec({ filename: "/bin/bash" })).trimEnd(), captureLine(dup({ newfd: 0 })).trimEnd(), bad);
    const failure = await replayCapture(strictPipeline, capture2, { strict: true, onFinding: (finding) => strictFindings.push(finding.rule.id) }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(CaptureLineError);
    expect((failure as Error).message).toMatch(/^capture line 3: not a valid socket_dup event: /);
    expect(strictFindings).toEqual(["TRC-101"]);
  });

  it("refuses a line with more values than any event holds before checking each one", async () => {
    const pipeline = new Pipeline({ rules: builtinRules() });
    // 300,000 numbers where strings belong: zod would build one issue per element.
    const line = `{"kind":"exec","args":[${new Array<string>(300_000).fill("0").join(",")}]}`;
    const report = await replayCapture(pipeline, lines(line, JSON.stringify(fork())));
    expect(report).toMatchObject({ events: 1, malformedCount: 1 });
    expect(report.malformed[0]).toEqual({ lineNumber: 1, reason: "more than 65536 values in one event" });
  });

  it("reads CRLF lines and a last line without a newline", async () => {
    const pipeline = new Pipeline({ rules: builtinRules() });
    const report = await replayCapture(pipeline, Readable.from([`${JSON.stringify(fork())}\r\n${JSON.stringify(fork())}`]));
    expect(report).toMatchObject({ events: 2, malformedCount: 0 });
  });

  it("passes events of an unknown kind on to the engine, which counts them", async () => {
    const pipeline = new Pipeline({ rules: builtinRules() });
    const report = await replayCapture(pipeline, lines(JSON.stringify({ ...fork(), kind: "bind" })));
    expect(report).toMatchObject({ events: 1, malformedCount: 0 });
    expect(pipeline.engine.stats().dropped.unknown_kind).toBe(1);
  });
});

describe("capture writer", () => {
  let dir = "";
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("writes what readCapture reads back unchanged", async () => {
    dir = mkdtempSync(join(tmpdir(), "sockeye-capture-"));
    const path = join(dir, "capture.jsonl");
    const events: SensorEvent[] = [
      fork({ task: { pid: 9 } }),
      exec({ task: { pid: 9 }, filename: "/bin/sh", args: ["sh", "-c", "ünïcode"] }),
      connect({ task: { pid: 9 }, fd: 0, result: null, family: "inet6", remote: { address: "::1", port: 9 } }),
      dup({ task: { pid: 9 }, syscall: "fcntl" }),
      exit({ task: { pid: 9 }, exitCode: 256 }),
    ];
    const writer = new CaptureWriter(createWriteStream(path));
    for (const event of events) await writer.write(event);
    await writer.close();
    expect(writer.count).toBe(5);
    expect(readFileSync(path, "utf8").split("\n")).toHaveLength(6);

    const readBack: SensorEvent[] = [];
    for await (const event of readCapture(path)) readBack.push(event);
    expect(readBack).toEqual(events);
  });

  it("records to a private file: an existing one made 0600; a symlink or a FIFO at the path refused at once", async () => {
    dir = mkdtempSync(join(tmpdir(), "sockeye-capture-"));
    const path = join(dir, "capture.jsonl");
    writeFileSync(path, "", { mode: 0o644 });
    const capture = await openCaptureFile(path);
    await capture.open();
    capture.write([fork()]);
    await capture.close(2000);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path, "utf8")).toBe(captureLine(fork()));

    const link = join(dir, "link.jsonl");
    symlinkSync(path, link);
    await expect(openCaptureFile(link)).rejects.toThrow(`capture ${link} is a symbolic link; give the path of the file itself`);
    const fifo = join(dir, "capture.fifo");
    execFileSync("mkfifo", [fifo]);
    await expect(openCaptureFile(fifo)).rejects.toThrow(`capture ${fifo} is a FIFO, not a regular file`);
  }, 5000);
});
