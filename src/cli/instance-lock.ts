/**
 * One `sockeye run` per host: a second one would load every program again and report every
 * attack twice. The lock is a listening socket in the abstract unix namespace: the kernel
 * frees it when the holder dies, however it dies (no stale pid file after a SIGKILL), and
 * a second daemon that fails to bind asks the holder for its pid to name it in the error.
 *
 * Abstract sockets belong to a network namespace: a daemon in another namespace (a
 * container with its own network) holds its own lock, which matches its own view of the
 * host only if it also has its own pid namespace; run one sensor per kernel.
 */
import net from "node:net";

export const DEFAULT_LOCK_NAME = "sockeye.run";

export class InstanceLockError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InstanceLockError";
  }
}

export interface InstanceLock {
  release(): Promise<void>;
}

function askHolderPid(address: string): Promise<string> {
  return new Promise((resolve) => {
    let answer = "";
    const socket = net.connect(address);
    const done = () => resolve(/^\d+$/.test(answer.trim()) ? answer.trim() : "unknown");
    socket.setTimeout(1_000, () => socket.destroy());
    socket.on("data", (d) => (answer += d));
    socket.on("close", done);
    socket.on("error", () => {});
  });
}

/** Takes the lock or throws InstanceLockError naming the running daemon's pid. */
export async function acquireInstanceLock(name = DEFAULT_LOCK_NAME): Promise<InstanceLock> {
  const address = `\0${name}`;
  const server = net.createServer((socket) => {
    socket.on("error", () => {});
    socket.end(`${process.pid}\n`);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(address, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EADDRINUSE") throw error;
    const pid = await askHolderPid(address);
    throw new InstanceLockError(
      `another sockeye run is already active on this host (pid ${pid}): stop it first, two would report every attack twice`,
    );
  }
  // The lock must never keep the daemon alive by itself.
  server.unref();
  return { release: () => new Promise((resolve) => server.close(() => resolve())) };
}
