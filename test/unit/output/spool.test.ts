import { appendFileSync, chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Spool, SpoolError, type SpoolOptions } from "sockeye/outputs";

let root: string;
const open: Spool[] = [];
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "sockeye-spool-"));
});
afterEach(() => {
  for (const spool of open.splice(0)) spool.close();
  rmSync(root, { recursive: true, force: true });
});

function spool(options: SpoolOptions = {}): Spool {
  const opened = new Spool({ dir: join(root, "spool"), fsyncIntervalMs: 0, ...options });
  open.push(opened);
  return opened;
}

async function drain(from: Spool): Promise<string[]> {
  const texts: string[] = [];
  for (let records = await from.next(7); records.length > 0; records = await from.next(7)) texts.push(...records.map((record) => record.payload.toString()));
  return texts;
}

const payloads = (from: number, to: number) => Array.from({ length: to - from }, (_, index) => `finding ${from + index}`);

describe("spool", () => {
  it("hands records out in order and keeps the unacknowledged ones across a reopen", async () => {
    const first = spool();
    first.append(payloads(0, 10));
    first.append(payloads(10, 20));
    const records = await first.next(5);
    expect(records.map((record) => record.payload.toString())).toEqual(payloads(0, 5));
    first.ack(records[4]!.seq);
    first.close();
    open.splice(0);
    const second = spool();
    expect(second.depth).toBe(15);
    expect(await drain(second)).toEqual(payloads(5, 20));
    second.rewind();
    expect(await drain(second)).toEqual(payloads(5, 20));
  });

  it("the byte bound drops the oldest segments, counted, and nothing else", async () => {
    const bounded = spool({ maxBytes: 4096, segmentBytes: 512 });
    for (let i = 0; i < 100; i++) bounded.append([`finding ${String(i).padStart(40, "0")}`]);
    const stats = bounded.stats();
    expect(stats.bytes).toBeLessThanOrEqual(4096);
    expect(stats.droppedFull).toBeGreaterThan(0);
    const left = await drain(bounded);
    expect(left.length + stats.droppedFull).toBe(100);
    // What is left is the newest, all of it, in order.
    expect(left).toEqual(Array.from({ length: left.length }, (_, k) => `finding ${String(100 - left.length + k).padStart(40, "0")}`));
  });

  it("records past the maximum age are dropped unsent and counted", async () => {
    let now = 1_000_000;
    const aging = spool({ maxAgeMs: 60_000, now: () => now });
    aging.append(payloads(0, 3));
    now += 30_000;
    aging.append(payloads(3, 5));
    now += 40_000;
    expect(await drain(aging)).toEqual(payloads(3, 5));
    expect(aging.stats()).toMatchObject({ droppedExpired: 3, depth: 2 });
  });

  it("a torn tail is skipped with one line and the records before it survive", async () => {
    const first = spool();
    first.append(payloads(0, 4));
    first.close();
    open.splice(0);
    const segment = readdirSync(join(root, "spool")).find((name) => name.endsWith(".seg"))!;
    // Half a record, as a power cut mid-write leaves it.
    appendFileSync(join(root, "spool", segment), Buffer.from([200, 0, 0, 0, 1, 2, 3, 4, 5, 6]));
    const troubles: string[] = [];
    const second = spool({ onTrouble: (line) => troubles.push(line) });
    expect(troubles).toHaveLength(1);
    expect(troubles[0]).toMatch(/10 bytes after the last whole record skipped/);
    second.append(payloads(4, 6));
    expect(await drain(second)).toEqual(payloads(0, 6));
    expect(second.stats().tornBytes).toBe(10);
  });

  it("creates its folder 0700", () => {
    spool();
    expect(readdirSync(root)).toEqual(["spool"]);
  });

  describe("refuses a folder that is not the daemon's, with one line", () => {
    it("group- or world-writable", () => {
      mkdirSync(join(root, "spool"), { mode: 0o700 });
      chmodSync(join(root, "spool"), 0o777);
      expect(() => spool()).toThrow(SpoolError);
      expect(() => spool()).toThrow(/^spool .*: is group- or world-writable \(mode 777\); chmod 700 it$/);
    });

    it("a symbolic link", () => {
      mkdirSync(join(root, "real"), { mode: 0o700 });
      symlinkSync(join(root, "real"), join(root, "spool"));
      expect(() => spool()).toThrow(/^spool .*: is a symbolic link; give the real folder$/);
    });

    it.skipIf(process.geteuid?.() !== 0)("owned by another user", () => {
      mkdirSync(join(root, "spool"), { mode: 0o700 });
      chownSync(join(root, "spool"), 65534, 65534);
      expect(() => spool()).toThrow(/^spool .*: is owned by uid 65534, not by the daemon \(uid 0\)$/);
    });

    it("in use by another live process", () => {
      mkdirSync(join(root, "spool"), { mode: 0o700 });
      appendFileSync(join(root, "spool", "owner.pid"), `${process.ppid}\n`);
      expect(() => spool()).toThrow(/^spool .*: is in use by process \d+$/);
    });
  });
});
