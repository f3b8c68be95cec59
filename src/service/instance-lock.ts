/**
 * One `sockeye run` per host: a second one would load every program again and report every
 * attack twice. The lock is a listening unix socket in a directory only root can write
 * (/run/sockeye, 0700): no other user can take the name first and keep the sensor from
 * starting, which an abstract socket (no permissions) would allow. A second daemon that finds
 * the socket asks the holder for its pid, to name it; a socket nobody answers on is what a
 * killed daemon left behind, and is replaced.
 *
 * The directory belongs to a mount namespace: a daemon in a container with its own /run holds
 * its own lock. Run one sensor per kernel.
 */
import { lstatSync, mkdirSync, unlinkSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { EXIT_REFUSED, SockeyeError } from "../errors.js";

export const DEFAULT_LOCK_DIR = "/run/sockeye";
const SOCKET_NAME = "run.sock";

export class InstanceLockError extends SockeyeError {
  constructor(message: string) {
    super(message, "SOCKEYE_INSTANCE_LOCK", EXIT_REFUSED);
  }
}

export interface InstanceLock {
  release(): Promise<void>;
}

/** The pid a live holder answers with ("unknown" if it says nothing), or undefined: stale. */
function askHolder(path: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    let answer = "";
    let connected = false;
    const socket = net.connect(path, () => (connected = true));
    socket.setTimeout(1_000, () => socket.destroy());
    socket.on("data", (d: Buffer) => (answer += d.toString("utf8")));
    socket.on("error", () => {});
    socket.on("close", () => resolve(connected ? (/^\d+$/.test(answer.trim()) ? answer.trim() : "unknown") : undefined));
  });
}

function listen(server: net.Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

function checkDirectory(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new InstanceLockError(`cannot create ${dir} for the instance lock: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const stat = lstatSync(dir);
  // Anyone else able to write there could plant the lock and keep the sensor down.
  if (!stat.isDirectory() || stat.uid !== process.getuid?.() || (stat.mode & 0o022) !== 0) {
    throw new InstanceLockError(`${dir} must be a directory owned by uid ${process.getuid?.()} and writable by it alone (it holds the instance lock): fix or remove it`);
  }
}

/** Takes the lock or throws InstanceLockError (one line) naming the running daemon's pid. */
export async function acquireInstanceLock(dir = DEFAULT_LOCK_DIR): Promise<InstanceLock> {
  checkDirectory(dir);
  const path = join(dir, SOCKET_NAME);
  const server = net.createServer((socket) => {
    socket.on("error", () => {});
    socket.end(`${process.pid}\n`);
  });
  for (let attempt = 0; ; attempt++) {
    try {
      await listen(server, path);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EADDRINUSE" || attempt > 0) {
        throw new InstanceLockError(`cannot take the instance lock ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      }
      const holder = await askHolder(path);
      if (holder !== undefined) {
        throw new InstanceLockError(
          `another sockeye run is already active on this host (pid ${holder}): stop it first, two would report every attack twice`,
        );
      }
      unlinkSync(path); // left by a daemon that was killed: nobody listens on it
    }
  }
  // The lock must never keep the daemon alive by itself.
  server.unref();
  // Closing a unix socket server removes its file (libuv unlinks it).
  return { release: () => new Promise((resolve) => server.close(() => resolve())) };
}
