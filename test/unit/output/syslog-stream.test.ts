/**
 * Syslog over TCP (RFC 6587 octet counting) and TLS (RFC 5425) against a real rsyslogd
 * started by the test on 127.0.0.1, with its own config in a temporary folder.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SyslogOutput, type Finding } from "sockeye";
import { numberedFindings } from "./fixtures.js";
import { freePort, makeCertificates, startRsyslog, stop, type Rsyslog } from "./servers.js";

let dir: string;
let certs: ReturnType<typeof makeCertificates>;
const servers: Rsyslog[] = [];
const outputs: SyslogOutput[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "sockeye-rsyslog-"));
  certs = makeCertificates(dir);
});

afterEach(async () => {
  await Promise.all(outputs.splice(0).map((output) => output.close(0)));
  await Promise.all(servers.splice(0).map((server) => stop(server.child)));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function rsyslog(port: number, tls = false): Promise<Rsyslog> {
  const folder = mkdtempSync(join(dir, "server-"));
  const server = await startRsyslog(port, folder, tls ? { caFile: certs.ca, certFile: certs.serverCert, keyFile: certs.serverKey, authMode: "x509/certvalid" } : undefined);
  servers.push(server);
  return server;
}

function output(options: ConstructorParameters<typeof SyslogOutput>[0]): SyslogOutput {
  const created = new SyslogOutput({ reconnect: { initialMs: 50, maxMs: 400 }, ...options });
  outputs.push(created);
  return created;
}

/** The finding ids in what rsyslog wrote, in order. */
function receivedIds(...received: Rsyslog[]): string[] {
  return received.flatMap((server) => server.messages()).map((message) => (JSON.parse(message.slice(message.indexOf("{"))) as Finding).event.id);
}

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const ids = (findings: readonly Finding[]) => findings.map((finding) => finding.event.id);

describe("syslog over TCP and TLS, against rsyslogd", () => {
  it("tcp: each finding arrives as one RFC 5424 message, in order", async () => {
    const port = await freePort();
    const server = await rsyslog(port);
    const syslog = output({ protocol: "tcp", port });
    await syslog.open();
    const findings = numberedFindings(25);
    syslog.write(findings);
    expect(await syslog.flush(5000)).toEqual({ complete: true, abandoned: 0 });
    await until(() => server.messages().length >= 25);
    expect(receivedIds(server)).toEqual(ids(findings));
    expect(server.messages()[0]).toBe(`<83>1 2026-11-22T10:00:00.000Z test-host sockeye ${process.pid} finding - ${JSON.stringify(findings[0])}`);
    expect(syslog.stats()).toMatchObject({ written: 25, queueDepth: 0 });
  });

  it("tls with a client certificate: the server checked against the CA file, the findings arrive", async () => {
    const port = await freePort();
    const server = await rsyslog(port, true);
    const syslog = output({ protocol: "tls", port, tls: { caFile: certs.ca, certFile: certs.clientCert, keyFile: certs.clientKey } });
    await syslog.open();
    const findings = numberedFindings(10);
    syslog.write(findings);
    expect((await syslog.flush(5000)).complete).toBe(true);
    await until(() => server.messages().length >= 10);
    expect(receivedIds(server)).toEqual(ids(findings));
  });

  it("tls: a server whose certificate is not from the CA gets nothing; the reason is counted, not silent", async () => {
    const port = await freePort();
    const server = await rsyslog(port, true);
    const syslog = output({ protocol: "tls", port, tls: { caFile: certs.otherCa, certFile: certs.clientCert, keyFile: certs.clientKey } });
    await syslog.open();
    syslog.write(numberedFindings(3));
    expect(await syslog.flush(600)).toEqual({ complete: false, abandoned: 3 });
    const stats = syslog.stats();
    expect(stats.dropped.flush_timeout).toBe(3);
    expect(stats.retries).toBeGreaterThan(0);
    expect(stats.lastError).toMatch(/certificate/i);
    expect(server.messages()).toEqual([]);
  });

  it("refuses a missing TLS file at open with one line", async () => {
    const syslog = output({ protocol: "tls", tls: { caFile: join(dir, "missing.pem") } });
    await expect(syslog.open()).rejects.toThrow(/^output syslog: TLS CA file .*missing\.pem: ENOENT[^\n]*$/);
  });

  it.each([["tcp"], ["tls"]] as const)("%s: rsyslogd stopped mid-stream and restarted: reconnects with backoff, the findings queued meanwhile arrive in order", async (protocol) => {
    const port = await freePort();
    const first = await rsyslog(port, protocol === "tls");
    const tls = protocol === "tls" ? { caFile: certs.ca, certFile: certs.clientCert, keyFile: certs.clientKey } : undefined;
    const syslog = output({ protocol, port, ...(tls ? { tls } : {}) });
    await syslog.open();
    const findings = numberedFindings(60);
    syslog.write(findings.slice(0, 20));
    await until(() => first.messages().length >= 20);
    await stop(first.child);
    // Written while rsyslog is down: they wait in the queue while the output reconnects.
    for (const finding of findings.slice(20, 40)) syslog.write([finding]);
    // (No flush here: a flush's deadline would drop them, as flush_timeout.)
    await until(() => syslog.stats().retries >= 2);
    expect(syslog.stats().queueDepth).toBe(20);
    expect(syslog.stats().lastError).toMatch(/ECONNREFUSED|closed the connection/);
    const second = await rsyslog(port, protocol === "tls");
    syslog.write(findings.slice(40));
    expect((await syslog.flush(10_000)).complete).toBe(true);
    await until(() => second.messages().length >= 40);
    expect(receivedIds(first, second)).toEqual(ids(findings));
    const stats = syslog.stats();
    expect(stats.written).toBe(60);
    expect(Object.values(stats.dropped).every((n) => n === 0)).toBe(true);
  }, 30_000);
});

describe("syslog over TCP: what best-effort means", () => {
  it("rsyslogd SIGKILLed under a steady stream: whatever is lost was in flight at the kill; everything after the reconnect arrives", async () => {
    const port = await freePort();
    const first = await rsyslog(port);
    const syslog = output({ protocol: "tcp", port });
    await syslog.open();
    const findings = numberedFindings(200);
    let second: Rsyslog | undefined;
    for (const [index, finding] of findings.entries()) {
      syslog.write([finding]);
      await new Promise((resolve) => setTimeout(resolve, 3));
      if (index === 99) {
        first.child.kill("SIGKILL");
        await new Promise((resolve) => first.child.once("exit", resolve));
        second = await rsyslog(port);
      }
    }
    expect((await syslog.flush(10_000)).complete).toBe(true);
    await until(() => receivedIds(first, second!).includes("finding-199"));
    const received = receivedIds(first, second!);
    const missing = ids(findings).filter((id) => !received.includes(id));
    // The lost ones are the kernel's to lose: written to a connection whose server died.
    const stats = syslog.stats();
    expect(stats.written).toBe(200);
    expect(received.slice(-50)).toEqual(ids(findings.slice(150)));
    expect(missing.every((id) => Number(id.split("-")[1]) >= 90 && Number(id.split("-")[1]) < 110)).toBe(true);
  }, 30_000);
});
