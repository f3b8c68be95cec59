import { appendFileSync, chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
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

  it("at the byte bound a ranked append goes by rank: a flood of low records cannot push out a waiting high one, and every refusal is counted", async () => {
    const bounded = spool({ maxBytes: 4096, segmentBytes: 512 });
    const text = (i: number) => `finding ${String(i).padStart(40, "0")}`;
    bounded.append([text(0)], [2]); // one high finding, waiting
    for (let i = 1; i < 200; i++) bounded.append([text(i)], [0]);
    const stats = bounded.stats();
    expect(stats.bytes).toBeLessThanOrEqual(4096);
    const left = await drain(bounded);
    expect(left[0]).toBe(text(0));
    expect(left.length + stats.droppedFull).toBe(200);
    // Records of its rank or above still make room by dropping the oldest, the high one included.
    const before = bounded.stats().droppedFull;
    for (let i = 200; i < 300; i++) bounded.append([text(i)], [2]);
    const after = await drain(bounded);
    expect(after).toContain(text(299));
    expect(bounded.stats().droppedFull).toBeGreaterThan(before);
    bounded.rewind();
    expect(await drain(bounded)).not.toContain(text(0));
  });

  it("once the high record is acknowledged, low records make room again", async () => {
    const bounded = spool({ maxBytes: 4096, segmentBytes: 512 });
    const text = (i: number) => `finding ${String(i).padStart(40, "0")}`;
    bounded.append([text(0)], [2]);
    bounded.ack((await bounded.next(1))[0]!.seq);
    for (let i = 1; i < 200; i++) bounded.append([text(i)], [0]);
    const stats = bounded.stats();
    const left = await drain(bounded);
    expect(left.at(-1)).toBe(text(199));
    expect(left.length + stats.droppedFull).toBe(199);
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
    expect(troubles[0]).toMatch(/10 bytes that do not frame skipped/);
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
      const startTicks = readFileSync(`/proc/${process.ppid}/stat`, "utf8").split(") ")[1]!.split(" ")[19];
      const bootId = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
      appendFileSync(join(root, "spool", "owner.pid"), `${process.ppid} ${startTicks} ${bootId}\n`);
      expect(() => spool()).toThrow(/^spool .*: is in use by process \d+$/);
    });

    it("a parent folder others can write to, naming it", () => {
      mkdirSync(join(root, "open"), { mode: 0o777 });
      chmodSync(join(root, "open"), 0o777);
      expect(() => spool({ dir: join(root, "open", "spool") })).toThrow(
        `spool ${join(root, "open", "spool")}: ${join(root, "open")} is group- or world-writable (mode 777); give a path whose folders only root or the daemon's user can write`,
      );
    });

    it("a parent folder that is a symbolic link", () => {
      mkdirSync(join(root, "real"), { mode: 0o700 });
      symlinkSync(join(root, "real"), join(root, "link"));
      expect(() => spool({ dir: join(root, "link", "spool") })).toThrow(`spool ${join(root, "link", "spool")}: ${join(root, "link")} is a symbolic link; give the real path`);
    });
  });

  describe("a stale owner record does not keep the spool down", () => {
    it.each([
      ["a bare pid, as a pid file left by an earlier boot", "1\n"],
      ["pid 1 of another boot", "1 1 00000000-0000-0000-0000-000000000000\n"],
      ["this boot's pid 1 with another start time", () => `1 999999999 ${readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim()}\n`],
    ])("%s", (_case, record) => {
      mkdirSync(join(root, "spool"), { mode: 0o700 });
      writeFileSync(join(root, "spool", "owner.pid"), typeof record === "string" ? record : record());
      spool().append(["one"]);
    });
  });

  it("works in the folder it opened: a folder swapped in under its name later gets nothing, a planted acked.tmp is not followed", () => {
    const first = spool({ fsyncIntervalMs: 0 });
    first.append(payloads(0, 3));
    renameSync(join(root, "spool"), join(root, "moved"));
    mkdirSync(join(root, "spool"), { mode: 0o700 });
    const victim = join(root, "victim");
    writeFileSync(victim, "precious\n");
    symlinkSync(victim, join(root, "spool", "acked.tmp"));
    symlinkSync(victim, join(root, "moved", "acked.tmp"));
    first.ack(2);
    first.append(payloads(3, 4));
    first.close();
    open.splice(0);
    expect(readFileSync(victim, "utf8")).toBe("precious\n");
    expect(readFileSync(join(root, "moved", "acked"), "utf8")).toBe("2\n");
    expect(readdirSync(join(root, "spool")).sort()).toEqual(["acked.tmp"]);
    expect(readdirSync(join(root, "moved")).filter((name) => name.endsWith(".seg"))).toHaveLength(1);
  });

  it("a bad CRC mid-segment skips that record only: the reading resyncs on the next whole one", async () => {
    const first = spool();
    first.append(payloads(0, 5));
    first.close();
    open.splice(0);
    const segment = join(root, "spool", readdirSync(join(root, "spool")).find((name) => name.endsWith(".seg"))!);
    const bytes = readFileSync(segment);
    const secondRecord = 24 + bytes.readUInt32LE(0);
    bytes.writeUInt8(bytes.readUInt8(secondRecord + 24) ^ 0xff, secondRecord + 24); // a payload byte of record 2
    writeFileSync(segment, bytes);
    const troubles: string[] = [];
    const second = spool({ onTrouble: (line) => troubles.push(line) });
    expect(await drain(second)).toEqual(["finding 0", "finding 2", "finding 3", "finding 4"]);
    expect(troubles).toEqual([expect.stringMatching(/: 33 bytes that do not frame skipped \(a torn write or a corrupt record\)$/)]);
  });
});
