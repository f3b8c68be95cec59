/**
 * Every error sockeye raises on purpose is a SockeyeError with a stable code and the exit
 * status the CLI uses: 2 for bad input, 1 for what the host refused.
 */
import { describe, expect, it } from "vitest";
import { CaptureLineError, ElasticRuleError, EqlError, OutputError, SensorError, SockeyeError } from "sockeye";
import { ConfigError } from "../../src/config/config.js";
import { InstanceLockError } from "../../src/service/instance-lock.js";

describe("SockeyeError", () => {
  it.each([
    [new SensorError("no BTF", "NO_BTF", 2), "SensorError", "NO_BTF", 1],
    [new EqlError("bad", 1, 2), "EqlError", "SOCKEYE_EQL", 2],
    [new CaptureLineError(3, "not JSON"), "CaptureLineError", "SOCKEYE_CAPTURE_LINE", 2],
    [new ElasticRuleError("r.toml", "bad"), "ElasticRuleError", "SOCKEYE_RULE_FILE", 2],
    [new OutputError("file", "cannot open"), "OutputError", "SOCKEYE_OUTPUT", 1],
    [new ConfigError("config x: bad"), "ConfigError", "SOCKEYE_CONFIG", 2],
    [new InstanceLockError("taken"), "InstanceLockError", "SOCKEYE_INSTANCE_LOCK", 1],
  ])("%s", (error, name, code, exitStatus) => {
    expect(error).toBeInstanceOf(SockeyeError);
    expect(error).toBeInstanceOf(Error);
    expect({ name: error.name, code: error.code, exitStatus: error.exitStatus }).toEqual({ name, code, exitStatus });
  });

  it("SensorError keeps the (message, code, errno) constructor the addon calls", () => {
    const error = new SensorError("bpf() refused", "EPERM_BPF", 1);
    expect({ message: error.message, code: error.code, errno: error.errno }).toEqual({ message: "bpf() refused", code: "EPERM_BPF", errno: 1 });
  });
});
