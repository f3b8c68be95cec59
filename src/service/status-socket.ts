/**
 * `sockeye status` asks the running daemon through a unix socket beside the instance lock
 * (/run/sockeye/status.sock, in the folder only root can enter): no port to configure, and it
 * answers in a container whose probes run `sockeye status` inside it. The daemon writes its
 * health report as one JSON line and closes.
 */
import net from "node:net";
import { join } from "node:path";
import { EXIT_REFUSED, SockeyeError } from "../errors.js";
import type { HealthReport } from "./health.js";
import { DEFAULT_LOCK_DIR } from "./instance-lock.js";

const SOCKET_NAME = "status.sock";

export class StatusError extends SockeyeError {
  constructor(message: string) {
    super(message, "SOCKEYE_STATUS", EXIT_REFUSED);
  }
}

/** Serves the report; the instance lock is held, so the name is ours (a stale file is replaced). */
export async function serveStatus(report: () => HealthReport, dir = DEFAULT_LOCK_DIR): Promise<{ close(): Promise<void> }> {
  const path = join(dir, SOCKET_NAME);
  const server = net.createServer((socket) => {
    socket.on("error", () => {});
    socket.end(`${JSON.stringify(report())}\n`);
  });
  const { unlinkSync } = await import("node:fs");
  try {
    unlinkSync(path);
  } catch {
    // none left by an earlier daemon
  }
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => resolve());
  });
  server.unref();
  return { close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** The running daemon's report, or a StatusError saying why there is none (one line). */
export function queryStatus(dir = DEFAULT_LOCK_DIR, timeoutMs = 3_000): Promise<HealthReport> {
  const path = join(dir, SOCKET_NAME);
  return new Promise((resolve, reject) => {
    let answer = "";
    const socket = net.connect(path);
    socket.setTimeout(timeoutMs, () => {
      socket.destroy();
      reject(new StatusError(`the daemon did not answer on ${path} within ${timeoutMs / 1000} s: its event loop may be stuck`));
    });
    socket.on("data", (d: Buffer) => (answer += d.toString("utf8")));
    socket.on("error", (error: NodeJS.ErrnoException) => {
      const why = error.code === "ENOENT" || error.code === "ECONNREFUSED" ? "no sockeye run is active on this host" : `cannot reach the daemon: ${error.code ?? error.message}`;
      reject(new StatusError(`${why} (${path})`));
    });
    socket.on("end", () => {
      try {
        resolve(JSON.parse(answer) as HealthReport);
      } catch {
        reject(new StatusError(`the daemon's answer on ${path} is not a status report`));
      }
    });
  });
}
