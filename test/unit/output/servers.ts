/**
 * Real receivers for the durable outputs' tests, each on 127.0.0.1 with its state in a
 * temporary folder: nats-server with JetStream, rsyslogd with its own config.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
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

export interface Rsyslog {
  child: ChildProcess;
  /** The raw messages rsyslog wrote, one per line. */
  messages(): string[];
}

export interface RsyslogTls {
  caFile: string;
  certFile: string;
  keyFile: string;
  /** x509/certvalid: the client must present a certificate from the CA; anon: none asked. */
  authMode: "x509/certvalid" | "anon";
}

/**
 * rsyslogd in the foreground with its own config, pid file and work folder under `dir`
 * (nothing of the host's rsyslog is read or touched): imtcp on 127.0.0.1:`port`, with the
 * gtls driver when `tls` is given, every raw message appended to `<dir>/received.log`.
 */
export async function startRsyslog(port: number, dir: string, tls?: RsyslogTls): Promise<Rsyslog> {
  const work = join(dir, "rsyslog-work");
  mkdirSync(work, { recursive: true });
  const out = join(dir, "received.log");
  const tlsGlobal = tls
    ? ` defaultNetstreamDriver="gtls" defaultNetstreamDriverCAFile="${tls.caFile}" defaultNetstreamDriverCertFile="${tls.certFile}" defaultNetstreamDriverKeyFile="${tls.keyFile}"`
    : "";
  const tlsInput = tls ? ` streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="${tls.authMode}"` : "";
  const config = [
    `global(workDirectory="${work}" maxMessageSize="64k"${tlsGlobal})`,
    `module(load="imtcp")`,
    `template(name="raw" type="string" string="%rawmsg%\\n")`,
    `input(type="imtcp" address="127.0.0.1" port="${port}"${tlsInput})`,
    `action(type="omfile" file="${out}" template="raw")`,
    "",
  ].join("\n");
  const configPath = join(dir, "rsyslog.conf");
  writeFileSync(configPath, config);
  const child = spawn("rsyslogd", ["-n", "-f", configPath, "-i", join(dir, "rsyslog.pid")], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  await Promise.race([
    listening(port),
    new Promise((_, reject) => child.once("exit", (code) => reject(new Error(`rsyslogd exited (${code}): ${stderr}`)))),
  ]);
  return {
    child,
    messages: () => {
      try {
        return readFileSync(out, "utf8").split("\n").filter((line) => line !== "");
      } catch {
        return [];
      }
    },
  };
}

/** A throwaway CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl. */
export function makeCertificates(dir: string): { ca: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string; otherCa: string } {
  const file = (name: string) => join(dir, name);
  const run = (...args: string[]) => execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
  const ca = (name: string) => {
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", `/CN=${name}`, "-keyout", file(`${name}-key.pem`), "-out", file(`${name}.pem`));
  };
  const leaf = (name: string, extensions: string) => {
    run("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${name}`, "-keyout", file(`${name}-key.pem`), "-out", file(`${name}.csr`));
    writeFileSync(file(`${name}.ext`), extensions);
    run("x509", "-req", "-in", file(`${name}.csr`), "-CA", file("ca.pem"), "-CAkey", file("ca-key.pem"), "-CAcreateserial", "-days", "2", "-extfile", file(`${name}.ext`), "-out", file(`${name}.pem`));
  };
  ca("ca");
  ca("other-ca");
  leaf("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n");
  leaf("client", "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n");
  return {
    ca: file("ca.pem"),
    serverCert: file("server.pem"),
    serverKey: file("server-key.pem"),
    clientCert: file("client.pem"),
    clientKey: file("client-key.pem"),
    otherCa: file("other-ca.pem"),
  };
}
