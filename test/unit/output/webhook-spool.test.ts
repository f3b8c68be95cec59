/**
 * The webhook through the on-disk spool, against a real HTTP server on 127.0.0.1: a
 * finding leaves the spool only on a 2xx.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SpooledWebhookOutput, type Finding } from "sockeye";
import { numberedFindings, spoolThenKill } from "./fixtures.js";
import { freePort } from "./servers.js";

let dir: string;
let port: number;
const servers: Server[] = [];
const outputs: SpooledWebhookOutput[] = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "sockeye-webhook-spool-"));
  port = await freePort();
});

afterEach(async () => {
  await Promise.all(outputs.splice(0).map((output) => output.close(0)));
  await Promise.all(servers.splice(0).map(closeServer));
  rmSync(dir, { recursive: true, force: true });
});

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

/** An HTTP receiver on the test's port, answering `replies` in turn, then 200; it records what a 2xx took. */
async function receiver(replies: number[] = []) {
  const accepted: string[] = [];
  const statuses: number[] = [];
  const server = createServer((request, response) => {
    let body = "";
    request.setEncoding("utf8");
    request.on("data", (chunk: string) => (body += chunk));
    request.on("end", () => {
      const status = replies.shift() ?? 200;
      statuses.push(status);
      if (status < 300) accepted.push(...(JSON.parse(body) as Finding[]).map((finding) => finding.event.id));
      response.writeHead(status).end();
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return { server, accepted, statuses };
}

function webhook(extra: Partial<ConstructorParameters<typeof SpooledWebhookOutput>[0]> = {}): SpooledWebhookOutput {
  const output = new SpooledWebhookOutput({ url: `http://127.0.0.1:${port}/hook`, maxBatch: 7, timeoutMs: 1000, spool: { dir: join(dir, "spool"), fsyncIntervalMs: 50 }, ...extra });
  outputs.push(output);
  return output;
}

const ids = (findings: readonly Finding[]) => findings.map((finding) => finding.event.id);

describe("webhook through the spool", () => {
  it("the server down: the backlog is kept on disk; once it is up it is delivered, in order, once", async () => {
    const output = webhook();
    await output.open();
    const findings = numberedFindings(30);
    output.write(findings);
    // A flush at its deadline drops nothing here: the findings stay spooled.
    expect(await output.flush(300)).toEqual({ complete: false, abandoned: 0 });
    expect(output.stats()).toMatchObject({ queueDepth: 30, written: 0 });
    expect(output.stats().retries).toBeGreaterThan(0);
    expect(readdirSync(join(dir, "spool")).some((name) => name.endsWith(".seg"))).toBe(true);
    const server = await receiver();
    expect((await output.flush(15_000)).complete).toBe(true);
    expect(server.accepted).toEqual(ids(findings));
    const stats = output.stats();
    expect(stats).toMatchObject({ written: 30, queueDepth: 0 });
    expect(Object.values(stats.dropped).every((n) => n === 0)).toBe(true);
  }, 30_000);

  it("the server stopped mid-stream and restarted: everything arrives in order", async () => {
    let server = await receiver();
    const output = webhook();
    await output.open();
    const findings = numberedFindings(45);
    output.write(findings.slice(0, 15));
    expect((await output.flush(5000)).complete).toBe(true);
    await closeServer(servers.pop()!);
    for (const finding of findings.slice(15, 30)) output.write([finding]);
    expect((await output.flush(300)).complete).toBe(false);
    const before = server.accepted;
    server = await receiver();
    output.write(findings.slice(30));
    expect((await output.flush(15_000)).complete).toBe(true);
    expect([...before, ...server.accepted]).toEqual(ids(findings));
  }, 30_000);

  it("5xx, 429, 401 and 404 keep the batch spooled and retried; 400 and 413 drop it, counted as http_rejected", async () => {
    const server = await receiver([503, 429, 401, 404, 400, 413]);
    const output = webhook({ maxBatch: 5 });
    await output.open();
    const findings = numberedFindings(15);
    output.write(findings);
    expect((await output.flush(15_000)).complete).toBe(true);
    // The first batch is answered 503, 429, 401, 404 (kept, retried), then 400 (dropped);
    // the second 413 (dropped); the third 200.
    expect(server.statuses).toEqual([503, 429, 401, 404, 400, 413, 200]);
    expect(server.accepted).toEqual(ids(findings.slice(10)));
    const stats = output.stats();
    expect(stats.dropped.http_rejected).toBe(10);
    expect(stats.written).toBe(5);
    expect(stats.queueDepth).toBe(0);
  }, 30_000);

  it("SIGKILLed with a backlog: the next process delivers it, in order, once", async () => {
    const spool = join(dir, "spool");
    const url = `http://127.0.0.1:${port}/hook`;
    await spoolThenKill("webhook-child.ts", [url, spool, "40"]);
    const server = await receiver();
    const output = webhook();
    await output.open();
    expect(output.stats().queueDepth).toBe(40);
    expect((await output.flush(15_000)).complete).toBe(true);
    expect(server.accepted).toEqual(ids(numberedFindings(40)));
  }, 40_000);

  it("refuses a bad URL at open with one line, and releases the spool folder", async () => {
    const output = webhook({ url: "http://user:pw@127.0.0.1/" });
    await expect(output.open()).rejects.toThrow(/^output webhook: url must not carry credentials/);
    const again = webhook();
    await again.open();
  });
});
