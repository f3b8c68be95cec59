import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import { WebhookOutput, type WebhookOutputOptions } from "sockeye";
import { numberedFindings } from "./fixtures.js";

interface Received {
  method: string;
  headers: IncomingHttpHeaders;
  body: string;
  atMs: number;
}

/** What the server does with the next request: answer a status, or hold it until released. */
type Reply = number | "hold";

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** A real HTTP server on 127.0.0.1 answering `replies` in turn, then 200. */
async function webhookServer(replies: Reply[] = []) {
  const received: Received[] = [];
  const held: ServerResponse[] = [];
  const server = createServer((request, response) => {
    let body = "";
    request.setEncoding("utf8");
    request.on("data", (chunk: string) => (body += chunk));
    request.on("end", () => {
      received.push({ method: request.method ?? "", headers: request.headers, body, atMs: performance.now() });
      const reply = replies.shift() ?? 200;
      if (reply === "hold") held.push(response);
      else response.writeHead(reply).end(reply >= 400 ? "no" : "ok");
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    /** Findings' pids in each request body, request by request. */
    batches: () => received.map((r) => (JSON.parse(r.body) as { process: { pid: number } }[]).map((f) => f.process.pid)),
    release: () => held.splice(0).forEach((response) => response.writeHead(200).end("ok")),
    untilRequests: async (n: number) => {
      while (received.length < n) await new Promise((resolve) => setTimeout(resolve, 2));
    },
  };
}

/** Tiny, deterministic backoff so the suite stays fast. */
function webhook(options: WebhookOutputOptions): WebhookOutput {
  return new WebhookOutput({ backoff: { initialMs: 1, maxMs: 5 }, random: () => 0, ...options });
}

describe("webhook output", () => {
  it("POSTs a batch as a JSON array with the configured headers", async () => {
    const server = await webhookServer();
    const output = webhook({ url: server.url, headers: { Authorization: "Bearer s3cret", "Content-Type": "text/plain" } });
    await output.open();
    const findings = numberedFindings(3);
    output.write(findings);
    expect(await output.flush(2000)).toEqual({ complete: true, abandoned: 0 });

    expect(server.received).toHaveLength(1);
    const [request] = server.received;
    expect(request?.method).toBe("POST");
    expect(request?.headers["content-type"]).toBe("application/json");
    expect(request?.headers["authorization"]).toBe("Bearer s3cret");
    expect(JSON.parse(request?.body ?? "")).toEqual(findings);
    expect(output.stats()).toMatchObject({ name: "webhook", written: 3, retries: 0, queueDepth: 0 });
  });

  it("splits the queue into batches of maxBatch, in order", async () => {
    const server = await webhookServer();
    const output = webhook({ url: server.url, maxBatch: 2 });
    await output.open();
    output.write(numberedFindings(5));
    await output.flush(2000);
    expect(server.batches()).toEqual([[0, 1], [2, 3], [4]]);
  });

  it("retries 503s with exponential backoff, then delivers", async () => {
    const server = await webhookServer([503, 503, 503]);
    // random() = 1: each delay is the full exponential one, 20 ms then 40 ms then 80 ms.
    const output = webhook({ url: server.url, backoff: { initialMs: 20, maxMs: 1000 }, random: () => 1 });
    await output.open();
    output.write(numberedFindings(2));
    await output.flush(5000);
    expect(server.received).toHaveLength(4);
    expect(server.batches()).toEqual([[0, 1], [0, 1], [0, 1], [0, 1]]);
    const gaps = server.received.slice(1).map((r, i) => r.atMs - server.received[i]!.atMs);
    expect(gaps[0]).toBeGreaterThanOrEqual(19);
    expect(gaps[1]).toBeGreaterThanOrEqual(39);
    expect(gaps[2]).toBeGreaterThanOrEqual(79);
    expect(output.stats()).toMatchObject({ written: 2, retries: 3, lastError: "HTTP 503 Service Unavailable" });
    expect(Object.values(output.stats().dropped).every((n) => n === 0)).toBe(true);
  });

  it("retries 429 and network errors too, and drops the batch once the attempts run out", async () => {
    const server = await webhookServer([429, 500, 502]);
    const output = webhook({ url: server.url, maxAttempts: 3 });
    await output.open();
    output.write(numberedFindings(4));
    await output.flush(2000);
    expect(server.received).toHaveLength(3);
    expect(output.stats()).toMatchObject({ written: 0, retries: 2, dropped: { retries_exhausted: 4 } });

    const refused = await webhookServer();
    const url = refused.url;
    servers.pop()?.close(); // nothing listens there any more: connection refused
    const unreachable = webhook({ url, maxAttempts: 2 });
    await unreachable.open();
    unreachable.write(numberedFindings(1));
    await unreachable.flush(2000);
    expect(unreachable.stats()).toMatchObject({ written: 0, retries: 1, dropped: { retries_exhausted: 1 } });
    expect(unreachable.stats().lastError).toContain("ECONNREFUSED");
  });

  it("drops a batch the server rejects with 400 at once, and carries on with the next", async () => {
    const server = await webhookServer([400]);
    const output = webhook({ url: server.url, maxBatch: 3 });
    await output.open();
    output.write(numberedFindings(5));
    await output.flush(2000);
    expect(server.batches()).toEqual([[0, 1, 2], [3, 4]]);
    expect(output.stats()).toMatchObject({
      written: 2,
      retries: 0,
      dropped: { http_rejected: 3 },
      lastError: "HTTP 400 Bad Request",
    });
  });

  it("bounds the queue: past maxQueue the newest findings are dropped, counted exactly", async () => {
    const server = await webhookServer(["hold"]);
    const output = webhook({ url: server.url, maxQueue: 5, maxBatch: 2 });
    await output.open();
    output.write(numberedFindings(2)); // in flight at once, held by the server
    output.write(numberedFindings(10).slice(2)); // pids 2-9: 2-6 queued, 7-9 dropped
    expect(output.stats()).toMatchObject({ queueDepth: 7, dropped: { queue_full: 3 } });
    await server.untilRequests(1);
    server.release();
    expect(await output.flush(2000)).toEqual({ complete: true, abandoned: 0 });
    expect(server.batches().flat()).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(output.stats()).toMatchObject({ written: 7, queueDepth: 0, dropped: { queue_full: 3 } });
  });

  it("gives up at the flush deadline on a server that never answers, counting what it abandons", async () => {
    const server = await webhookServer(["hold"]);
    const output = webhook({ url: server.url, maxBatch: 2, timeoutMs: 60_000 });
    await output.open();
    output.write(numberedFindings(5));
    const started = performance.now();
    expect(await output.close(100)).toEqual({ complete: false, abandoned: 5 });
    expect(performance.now() - started).toBeLessThan(1000);
    expect(output.stats()).toMatchObject({ written: 0, queueDepth: 0, dropped: { flush_timeout: 5 } });
    output.write(numberedFindings(1));
    expect(output.stats().dropped.closed).toBe(1);
  });

  it("times out a request that takes longer than timeoutMs and retries it", async () => {
    const server = await webhookServer(["hold"]);
    // Long enough that the retry's prompt answer beats it on a busy host (at 50 ms a loaded
    // CI machine timed the retry out too), short enough to keep the test quick.
    const output = webhook({ url: server.url, timeoutMs: 400 });
    await output.open();
    output.write(numberedFindings(1));
    await output.flush(4000);
    expect(server.received).toHaveLength(2);
    expect(output.stats()).toMatchObject({ written: 1, retries: 1 });
    expect(output.stats().lastError).toBe("no response within 400 ms");
  });

  /** A server that answers `status` at once, then sends its body by `send` until the client goes. */
  async function endlessBodyServer(send: (response: ServerResponse) => void) {
    let sent = 0;
    let closed = false;
    const server = createServer((request, response) => {
      request.resume();
      request.on("end", () => {
        response.writeHead(200, { "content-type": "text/plain" });
        const write = response.write.bind(response);
        response.write = ((chunk: Buffer) => {
          sent += chunk.length;
          return write(chunk);
        }) as typeof response.write;
        response.on("close", () => (closed = true));
        send(response);
      });
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, sent: () => sent, closed: () => closed };
  }

  it("reads a bounded part of an endless response body, then hangs up: the batch is delivered", async () => {
    const chunk = Buffer.alloc(64 * 1024, "x");
    const server = await endlessBodyServer((response) => {
      const pump = () => {
        while (!response.destroyed && response.write(chunk));
        if (!response.destroyed) response.once("drain", pump);
      };
      pump();
    });
    const output = webhook({ url: server.url, timeoutMs: 3000, maxAttempts: 1 });
    await output.open();
    const started = performance.now();
    output.write(numberedFindings(1));
    await output.flush(5000);
    expect(performance.now() - started).toBeLessThan(1500);
    expect(output.stats()).toMatchObject({ written: 1, retries: 0 });
    await vi.waitFor(() => expect(server.closed()).toBe(true));
    // The kernel's socket buffers hold a few MiB; the client read a small, fixed part.
    expect(server.sent()).toBeLessThan(32 * 1024 * 1024);
  });

  it("stops reading a body that trickles past timeoutMs: the batch is delivered", async () => {
    const server = await endlessBodyServer((response) => {
      const timer = setInterval(() => response.write(Buffer.from("x")), 20);
      response.on("close", () => clearInterval(timer));
    });
    const output = webhook({ url: server.url, timeoutMs: 300, maxAttempts: 1 });
    await output.open();
    output.write(numberedFindings(1));
    await output.flush(3000);
    expect(output.stats()).toMatchObject({ written: 1, dropped: { retries_exhausted: 0, flush_timeout: 0 } });
    await vi.waitFor(() => expect(server.closed()).toBe(true));
  });

  it.each([
    { url: "not a url", problem: "url is not a valid URL" },
    { url: "ftp://127.0.0.1/hook", problem: "url must be http:// or https://, not ftp://" },
    { url: "http://user:pw@127.0.0.1/hook", problem: "url must not carry credentials; send them in an authorization header" },
  ])("rejects $url at open with one line, as bad input", async ({ url, problem }) => {
    const failure = await new WebhookOutput({ url, name: "siem" }).open().catch((error: unknown) => error);
    expect(failure).toMatchObject({ message: `output siem: ${problem}`, exitStatus: 2 });
  });

  it("rejects a header Node cannot send at open, naming it without echoing its value (a token)", async () => {
    const output = new WebhookOutput({ url: "http://127.0.0.1:1/", headers: { authorization: "Bearer s3cret\nb" } });
    const failure = await output.open().catch((error: unknown) => error);
    expect(failure).toMatchObject({ message: "output webhook: header authorization: its value has a character HTTP cannot carry (a newline or other control character, or one past U+00FF)", exitStatus: 2 });
  });

  it("rejects a header name that is not a token, naming it", async () => {
    const output = new WebhookOutput({ url: "http://127.0.0.1:1/", headers: { "x bad": "v" } });
    await expect(output.open()).rejects.toThrow(/^output webhook: header "x bad": not a valid header name$/);
  });
});
