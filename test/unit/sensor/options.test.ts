/**
 * One definition of the sensor's options: the config file's [sensor] table, openSensorSync() and
 * probe() validate with the same fields, and the table maps onto the library's names.
 */
import { describe, expect, it } from "vitest";
import { parseSensorOptions, sensorConfigSchema, sensorOptionsFromConfig } from "../../../src/sensor/options.js";

describe("sensor options", () => {
  it("maps the [sensor] table onto the options openSensorSync() takes", () => {
    const config = sensorConfigSchema.parse({ stdio_fd_max: 4, skip_programs: ["lsm/socket_connect"], process_ring_bytes: 1 << 21 });
    expect(sensorOptionsFromConfig(config)).toEqual({
      stdioFdMax: 4,
      skipCandidates: ["lsm/socket_connect"],
      processRingBytes: 1 << 21,
      readerRealtime: true,
      eventLoopRealtime: true,
      compatSyscalls: false,
    });
    expect(parseSensorOptions(sensorOptionsFromConfig(config)).ok).toBe(true);
  });

  it.each([
    [{ stdioFdMax: 1024 }, "sensor option stdioFdMax: Number must be less than or equal to 1023"],
    [{ detectionRingBytes: 5000 }, "sensor option detectionRingBytes: must be a power of two from 4096 to 2147483648"],
    // 32-bit bitwise arithmetic sees 2^32 as 0 and 2^32 + 2^12 as 4096: both must still fail.
    [{ detectionRingBytes: 2 ** 32 }, "sensor option detectionRingBytes: must be a power of two from 4096 to 2147483648"],
    [{ processRingBytes: 2 ** 32 + 4096 }, "sensor option processRingBytes: must be a power of two from 4096 to 2147483648"],
    [{ processRingBytes: 2 ** 53 }, "sensor option processRingBytes: must be a power of two from 4096 to 2147483648"],
    [{ compatSyscalls: "yes" }, "sensor option compatSyscalls: Expected boolean, received string"],
    [{ stdioFdmax: 3 }, "unknown sensor option stdioFdmax"],
  ])("rejects %j in one line", (options, problem) => {
    expect(parseSensorOptions(options)).toEqual({ ok: false, problem });
  });

  it("takes the largest ring the kernel's 32-bit size holds as a power of two", () => {
    expect(parseSensorOptions({ detectionRingBytes: 2 ** 31, processRingBytes: 4096 }).ok).toBe(true);
  });
});
