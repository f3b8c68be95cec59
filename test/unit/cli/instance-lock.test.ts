/**
 * The one-daemon-per-host lock: a second holder is refused naming the first's pid, a socket
 * left by a killed daemon is taken over, and a directory others can write is refused.
 */
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { InstanceLockError, acquireInstanceLock } from "../../../src/service/instance-lock.js";

const fresh = () => join(mkdtempSync(join(tmpdir(), "sockeye-lock-")), "run");

describe("instance lock", () => {
  it("a second holder is refused with the first's pid; released, it can be taken again", async () => {
    const dir = fresh();
    const first = await acquireInstanceLock(dir);
    await expect(acquireInstanceLock(dir)).rejects.toThrow(
      new InstanceLockError(`another sockeye run is already active on this host (pid ${process.pid}): stop it first, two would report every attack twice`),
    );
    await first.release();
    expect(existsSync(join(dir, "run.sock"))).toBe(false);
    const again = await acquireInstanceLock(dir);
    await again.release();
  });

  it("takes over the socket a killed holder left behind", async () => {
    const dir = fresh();
    mkdirSync(dir, { mode: 0o700 });
    // A holder in another process, killed with SIGKILL: its socket file stays, nobody listens.
    const holder = spawn(process.execPath, ["-e", `require("net").createServer().listen(${JSON.stringify(join(dir, "run.sock"))}, () => console.log("up"))`], { stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((resolve) => holder.stdout.once("data", () => resolve()));
    holder.kill("SIGKILL");
    await new Promise((resolve) => holder.once("exit", resolve));
    expect(existsSync(join(dir, "run.sock"))).toBe(true);
    const lock = await acquireInstanceLock(dir);
    await lock.release();
  });

  it("refuses a directory that others can write", async () => {
    const dir = fresh();
    mkdirSync(dir, { mode: 0o700 });
    chmodSync(dir, 0o777);
    await expect(acquireInstanceLock(dir)).rejects.toThrow(/must be a directory owned by uid \d+ and writable by it alone/);
  });
});
