/**
 * Real receivers for the durable outputs' tests, each on 127.0.0.1 with its state in a
 * temporary folder: nats-server with JetStream, rsyslogd with its own config.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer, connect as tcpConnect } from "node:net";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resolves once something accepts connections on the port. */
export async function listening(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = tcpConnect(port, "127.0.0.1", () => (socket.end(), resolve(true)));
      socket.on("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
}

/** A child to end by its pid: SIGTERM, SIGKILL after `graceMs`. */
export async function stop(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

export async function startNats(port: number, storeDir: string): Promise<ChildProcess> {
  const child = spawn("nats-server", ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", storeDir], { stdio: "ignore" });
  await Promise.race([
    listening(port),
    new Promise((_, reject) => child.once("exit", (code) => reject(new Error(`nats-server exited (${code})`)))),
  ]);
  return child;
}

export interface StoredMessage {
  seq: number;
  subject: string;
  msgId: string | undefined;
  json: unknown;
}

/** Every message the stream holds, in stream order. */
export async function readStream(port: number, stream: string): Promise<StoredMessage[]> {
  const connection = await connect({ servers: [`nats://127.0.0.1:${port}`] });
  try {
    const manager = await jetstreamManager(connection);
    const { state } = await manager.streams.info(stream);
    const messages: StoredMessage[] = [];
    for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
      const message = await manager.streams.getMessage(stream, { seq });
      if (message === null) continue;
      messages.push({ seq, subject: message.subject, msgId: message.header.get("Nats-Msg-Id") || undefined, json: message.json() });
    }
    return messages;
  } finally {
    await connection.close();
  }
}
