/**
 * The worker thread of WorkerHostView (worker-host.ts): runs the looks a local user can make
 * slow with ProcHostView's own budgets and caches, posts each answer on the port it was given,
 * then bumps the shared counter the main thread may be waiting on, and tells the main
 * thread's event loop an answer is there (for one nobody waits for any more).
 */
import { parentPort, workerData, type MessagePort } from "node:worker_threads";
import type { DigestLook, OpenFilesLook } from "./host-view.js";
import { ProcHostView } from "./proc-host.js";

/** The looks a local user can make slow: fds held, file size, a slow mount. */
export type SlowLook = { kind: "openFiles"; pid: number; startNs: number } | { kind: "fileDigest"; path: string };

export interface LookRequest {
  id: number;
  look: SlowLook;
}

export interface LookAnswer {
  id: number;
  answer: OpenFilesLook | DigestLook;
}

export interface LookWorkerData {
  port: MessagePort;
  /** One Int32: answers posted so far. */
  answered: SharedArrayBuffer;
  procRoot?: string;
  maxFdsPerLook?: number;
  maxHashedBytes?: number;
}

const { port, answered, ...options } = workerData as LookWorkerData;
const host = new ProcHostView(options);
const counter = new Int32Array(answered);
port.on("message", ({ id, look }: LookRequest) => {
  const answer = look.kind === "openFiles" ? host.openFiles(look.pid, look.startNs) : host.fileDigest(look.path);
  port.postMessage({ id, answer } satisfies LookAnswer);
  Atomics.add(counter, 0, 1);
  Atomics.notify(counter, 0);
  // For the event loop: an answer its asker stopped waiting for is taken up there (worker-host.ts).
  parentPort?.postMessage(id);
});
