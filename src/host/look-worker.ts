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
  /** Its process or file was slow to read last time: it goes after the others. */
  slow?: boolean;
}

export interface LookAnswer {
  id: number;
  answer: OpenFilesLook | DigestLook;
  /** How long the look itself ran, in ms (its wait in the queue left out). */
  ranMs: number;
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
// One look per turn of this thread's loop, so requests that arrive meanwhile are seen, and
// the quick ones go first: processes a user made slow to read (200,000 fds over a chain of
// ancestors) delay another look by one read of theirs, not by every one queued.
const queue: LookRequest[] = [];
let scheduled = false;
port.on("message", (request: LookRequest) => {
  queue.push(request);
  if (!scheduled) {
    scheduled = true;
    setImmediate(runOne);
  }
});

function runOne(): void {
  const quick = queue.findIndex((request) => request.slow !== true);
  const [{ id, look }] = queue.splice(quick >= 0 ? quick : 0, 1) as [LookRequest];
  const startedMs = performance.now();
  const answer = look.kind === "openFiles" ? host.openFiles(look.pid, look.startNs) : host.fileDigest(look.path);
  port.postMessage({ id, answer, ranMs: performance.now() - startedMs } satisfies LookAnswer);
  Atomics.add(counter, 0, 1);
  Atomics.notify(counter, 0);
  // For the event loop: an answer its asker stopped waiting for is taken up there (worker-host.ts).
  parentPort?.postMessage(id);
  scheduled = queue.length > 0;
  if (scheduled) setImmediate(runOne);
}
