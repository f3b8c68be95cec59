/**
 * A host view whose slow looks (a process's open files, a file's digest: their cost is chosen
 * by whoever holds the fds or wrote the file) run in a worker thread, so the event loop never
 * waits on them for more than a few milliseconds. The rest are cheap and stay on ProcHostView.
 *
 * The HostView interface is synchronous, so the main thread posts a look and waits for its
 * answer on a shared counter (Atomics.wait) for at most `waitMs`; past that the answer is
 * `incomplete` with reason `time_budget` (counted by the rules, never a silent "nothing") and
 * the look runs on. The waits share a budget (`waitBudgetMs` per `waitWindowMs`), so many
 * looks in one batch, each nearly as long as its wait, cannot add up into a stall. A
 * process's open files that arrive late stand for its next looks within `lateAnswerMs`; a digest is asked again, and the worker answers it from its cache by file
 * identity. When late answers have come, the `onLateAnswers` listener runs between events (the
 * daemon has its rules judge again what those looks left undecided: Engine.reconsider), so a
 * shell whose look timed out is judged when the answer is there, not on some later event. A
 * process whose own read outlasted the wait is slow: its looks run after the others', and
 * its late answer stands at least STAND_PER_COST times its read's cost, so processes a user
 * makes slow to read cannot keep the worker from the rest. A look running past `stuckMs` (a file on a hung mount) gets the worker replaced, the stuck one
 * abandoned; a worker that fails (out of its heap limit) is replaced by the next look too,
 * and counted with them, never an error of the daemon's.
 *
 * A live worker costs about 10 MB of RSS whatever it holds (its isolate and Node's bootstrap
 * in it; bench/README.md, change 30), so one that has had no look for `idleMs` is ended and
 * the next look starts another. That look waits for no boot: it answers `time_budget`, and
 * its answer comes late, like any look that outlasts the wait.
 */
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort, type ResourceLimits } from "node:worker_threads";
import type { BuildIdLook, DigestLook, HostView, OpenFilesLook } from "./host-view.js";
import type { ContainerIdentity } from "./container.js";
import type { LookAnswer, LookRequest, LookWorkerData, SlowLook } from "./look-worker.js";
import { ProcHostView, type ProcHostOptions } from "./proc-host.js";

export interface WorkerHostOptions extends ProcHostOptions {
  /** Longest the event loop waits for one look. */
  waitMs?: number;
  /**
   * Most the event loop waits for looks, all together, within `waitWindowMs` (default: two
   * waits): past it a look answers `time_budget` at once (and its answer comes late, as one
   * that outlasts its wait).
   */
  waitBudgetMs?: number;
  waitWindowMs?: number;
  /** How long a late answer about a process's open files stands in for a new look (longer for a costly read). */
  lateAnswerMs?: number;
  /** A look running longer than this has the worker replaced. */
  stuckMs?: number;
  /** Most looks queued in the worker; more are answered `time_budget` at once. */
  maxQueued?: number;
  /** A worker with no look asked of it and none running for this long is ended. */
  idleMs?: number;
  /** The worker's V8 heap bounds; one that runs out is replaced and counted. */
  resourceLimits?: ResourceLimits;
  /** The worker's script: the built look-worker.js beside this module unless given. */
  workerUrl?: URL;
}

/**
 * waitBudgetMs (two waits) per waitWindowMs (the reader's poll interval: one batch): a batch of
 * shells under a parent holding 200,000 fds asks a look per shell, each read of its 1,024-fd
 * budget taking most of a 10 ms wait, and one after another those waits add up. (The
 * 100–260 ms stalls event-loop-lag.test.ts showed in 4 of 10 runs were mostly TCP table reads
 * on the event loop, namespace-tables.ts; a budget of one wait made them worse: more late
 * answers, more reconsidering.)
 */
const DEFAULTS = { waitMs: 10, waitBudgetMs: 20, waitWindowMs: 100, lateAnswerMs: 1000, stuckMs: 2000, maxQueued: 256, idleMs: 10_000 };
/**
 * The worker's heap holds one look's answer (at most maxFdsPerLook open files; a digest's file
 * bytes are a Buffer, outside this heap) and the digest caches. Under the loads of
 * bench/event-loop-lag.mjs (219,296 fds held, 64 MiB execs, argv storms) its heap peaked at
 * 14.1 MB used, 17.7 MB taken: the bound leaves over four times that, and a worker that still
 * runs out is replaced, not the daemon's end.
 */
const LOOK_WORKER_LIMITS: ResourceLimits = { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 4 };
const TIMED_OUT = { status: "incomplete", reason: "time_budget" } as const;
/** Keys remembered as slow to look at; the oldest is forgotten past this. */
const MAX_SLOW_KEYS = 4096;
/**
 * A late answer stands at least this many times as long as its read took: a process that
 * costs 50 ms to read is read again at most every 2.5 s, so however many such processes a
 * user makes, each takes at most 1/STAND_PER_COST of the worker.
 */
const STAND_PER_COST = 50;

interface LookThread {
  worker: Worker;
  port: MessagePort;
  answered: Int32Array;
  /** key → request id and when it was posted, oldest first. */
  queued: Map<string, { id: number; postedMs: number }>;
  keyOf: Map<number, string>;
  idleTimer?: NodeJS.Timeout;
}

export class WorkerHostView implements HostView {
  private readonly local: ProcHostView;
  private readonly opts: typeof DEFAULTS;
  private readonly workerUrl: URL;
  private readonly workerOptions: Pick<ProcHostOptions, "procRoot" | "maxFdsPerLook" | "maxHashedBytes">;
  private readonly resourceLimits: ResourceLimits;
  private thread: LookThread | undefined;
  /** When the last look was asked (Date.now()). */
  private lastAskMs = 0;
  private idleEnded = 0;
  private nextId = 1;
  /** process key → open files that arrived after their asker stopped waiting. */
  private readonly late = new Map<string, { answer: OpenFilesLook; atMs: number; standsMs: number }>();
  /** Keys whose own read outlasted the wait: the worker runs theirs after the others (look-worker.ts). */
  private readonly slowKeys = new Set<string>();
  private replaced = 0;
  /** Answers that came after their asker stopped waiting, not yet told to the listener. */
  private lateUntold = 0;
  private lateListener: (() => void) | undefined;
  /** The current wait window's start (performance.now()) and what looks waited in it. */
  private windowStartMs = Number.NEGATIVE_INFINITY;
  private waitedMs = 0;

  constructor(options: WorkerHostOptions = {}) {
    const { waitMs, waitBudgetMs, waitWindowMs, lateAnswerMs, stuckMs, maxQueued, idleMs, resourceLimits, workerUrl, ...procOptions } = options;
    this.local = new ProcHostView(procOptions);
    this.opts = {
      waitMs: waitMs ?? DEFAULTS.waitMs,
      waitBudgetMs: waitBudgetMs ?? (waitMs !== undefined ? 2 * waitMs : DEFAULTS.waitBudgetMs),
      waitWindowMs: waitWindowMs ?? DEFAULTS.waitWindowMs,
      lateAnswerMs: lateAnswerMs ?? DEFAULTS.lateAnswerMs,
      stuckMs: stuckMs ?? DEFAULTS.stuckMs,
      maxQueued: maxQueued ?? DEFAULTS.maxQueued,
      idleMs: idleMs ?? DEFAULTS.idleMs,
    };
    this.resourceLimits = resourceLimits ?? LOOK_WORKER_LIMITS;
    this.workerUrl = workerUrl ?? new URL("./look-worker.js", import.meta.url);
    const { procRoot, maxFdsPerLook, maxHashedBytes } = procOptions;
    this.workerOptions = { procRoot, maxFdsPerLook, maxHashedBytes };
  }

  /** Workers replaced because a look ran past `stuckMs` or the worker failed (its heap limit). */
  get workersReplaced(): number {
    return this.replaced;
  }

  /** Workers ended after `idleMs` without a look (not counted as replaced). */
  get workersEndedIdle(): number {
    return this.idleEnded;
  }

  /** Whether a worker is running now. */
  get workerRunning(): boolean {
    return this.thread !== undefined;
  }

  openFiles(pid: number, startNs: number): OpenFilesLook {
    const key = `${pid}:${startNs}`;
    // A process whose look outlasted the wait once would outlast it again: its late answer stands.
    const lateAnswer = () => {
      const late = this.late.get(key);
      return late !== undefined && Date.now() - late.atMs <= late.standsMs ? late.answer : undefined;
    };
    return (this.ask(key, { kind: "openFiles", pid, startNs }, lateAnswer) as OpenFilesLook | undefined) ?? { ...TIMED_OUT, files: [] };
  }

  fileDigest(path: string): DigestLook {
    return (this.ask(`file:${path}`, { kind: "fileDigest", path }) as DigestLook | undefined) ?? TIMED_OUT;
  }

  /**
   * `listener` runs on the event loop after late answers arrived (one call for those that came
   * together); a look it makes finds them. Returns the function that stops it.
   */
  onLateAnswers(listener: () => void): () => void {
    this.lateListener = listener;
    return () => {
      if (this.lateListener === listener) this.lateListener = undefined;
    };
  }

  /** Ends the worker; a later slow look starts another. */
  async close(): Promise<void> {
    const thread = this.thread;
    this.thread = undefined;
    if (thread !== undefined) {
      clearTimeout(thread.idleTimer);
      await thread.worker.terminate();
    }
  }

  /** Starts the worker now, so that the first looks do not wait for a thread to boot (it ends after `idleMs` without one). */
  start(): void {
    this.liveThread();
  }

  /** The look's answer, or undefined when it did not come within the wait. */
  private ask(key: string, look: SlowLook, standIn: () => LookAnswer["answer"] | undefined = () => undefined): LookAnswer["answer"] | undefined {
    this.lastAskMs = Date.now();
    const thread = this.liveThread();
    this.collect(thread, undefined);
    const early = standIn();
    if (early !== undefined) return early;
    if (thread.queued.has(key) || thread.queued.size >= this.opts.maxQueued) return undefined;
    // Behind a look that already outlasted a wait, this one would wait for that one, not itself.
    const oldest = thread.queued.values().next().value;
    const behindSlowLook = oldest !== undefined && Date.now() - oldest.postedMs > this.opts.waitMs;
    const ownId = this.nextId++;
    thread.queued.set(key, { id: ownId, postedMs: Date.now() });
    thread.keyOf.set(ownId, key);
    thread.port.postMessage({ id: ownId, look, ...(this.slowKeys.has(key) ? { slow: true } : {}) } satisfies LookRequest);
    if (behindSlowLook) return undefined;
    const startMs = performance.now();
    if (startMs - this.windowStartMs >= this.opts.waitWindowMs) {
      this.windowStartMs = startMs;
      this.waitedMs = 0;
    }
    const deadline = startMs + Math.min(this.opts.waitMs, this.opts.waitBudgetMs - this.waitedMs);
    try {
      for (;;) {
        const seen = Atomics.load(thread.answered, 0);
        const answer = this.collect(thread, ownId);
        if (answer !== undefined) return answer;
        const left = deadline - performance.now();
        if (left <= 0) return undefined;
        Atomics.wait(thread.answered, 0, seen, left);
      }
    } finally {
      this.waitedMs += performance.now() - startMs;
    }
  }

  /** Takes every answer posted so far; returns the one for `wanted`, keeps late open files. */
  private collect(thread: LookThread, wanted: number | undefined): LookAnswer["answer"] | undefined {
    let found: LookAnswer["answer"] | undefined;
    for (let m = receiveMessageOnPort(thread.port); m !== undefined; m = receiveMessageOnPort(thread.port)) {
      const { id, answer, ranMs } = m.message as LookAnswer;
      const key = thread.keyOf.get(id);
      // Slow by its own read, not by its wait behind another's.
      if (key !== undefined) this.markSlow(key, ranMs > this.opts.waitMs);
      thread.keyOf.delete(id);
      if (key !== undefined) thread.queued.delete(key);
      if (id === wanted) found = answer;
      else if (key !== undefined) {
        this.lateUntold++;
        if (!key.startsWith("file:")) {
          this.late.delete(key); // re-inserted last: the map stays in arrival order
          this.late.set(key, { answer: answer as OpenFilesLook, atMs: Date.now(), standsMs: Math.max(this.opts.lateAnswerMs, ranMs * STAND_PER_COST) });
        }
      }
    }
    this.forgetStaleLate();
    return found;
  }

  private markSlow(key: string, slow: boolean): void {
    this.slowKeys.delete(key);
    if (!slow) return;
    this.slowKeys.add(key);
    if (this.slowKeys.size > MAX_SLOW_KEYS) this.slowKeys.delete(this.slowKeys.values().next().value!);
  }

  /** From the oldest, up to the first that still stands (one standing longer holds the rest a while). */
  private forgetStaleLate(): void {
    const now = Date.now();
    for (const [key, late] of this.late) {
      if (now - late.atMs <= late.standsMs) break;
      this.late.delete(key);
    }
  }

  /** The worker, started on first use, or a new one when the oldest queued look is stuck. */
  private liveThread(): LookThread {
    const current = this.thread;
    if (current !== undefined) {
      const oldest = current.queued.values().next().value;
      if (oldest === undefined || Date.now() - oldest.postedMs <= this.opts.stuckMs) return current;
      // A read blocked in the kernel cannot be interrupted: the thread is let go, unreferenced.
      this.thread = undefined;
      clearTimeout(current.idleTimer);
      void current.worker.terminate();
      this.replaced++;
    }
    const channel = new MessageChannel();
    const answered = new SharedArrayBuffer(4);
    const data: LookWorkerData = { port: channel.port2, answered, ...this.workerOptions };
    const worker = new Worker(this.workerUrl, { workerData: data, transferList: [channel.port2], resourceLimits: this.resourceLimits });
    worker.unref();
    channel.port1.unref();
    const thread: LookThread = { worker, port: channel.port1, answered: new Int32Array(answered), queued: new Map(), keyOf: new Map() };
    // The worker says "answered" here too, on the event loop: answers nobody waited for are
    // taken then, and the listener told (answers a wait took already are not counted again).
    worker.on("message", () => {
      if (this.thread !== thread) return;
      this.collect(thread, undefined);
      if (this.lateUntold === 0) return;
      this.lateUntold = 0;
      this.lateListener?.();
    });
    // A worker out of its heap (ERR_WORKER_OUT_OF_MEMORY) or ended by an error in its script:
    // without a listener the error would end the daemon. Its queued looks have answered or
    // will answer `time_budget`; the next look starts another worker.
    const failed = () => {
      if (this.thread !== thread) return;
      this.thread = undefined;
      clearTimeout(thread.idleTimer);
      this.replaced++;
    };
    worker.on("error", failed);
    worker.on("exit", failed);
    this.thread = thread;
    this.endWhenIdle(thread, this.opts.idleMs);
    return thread;
  }

  /** Ends the worker once no look has been asked for `idleMs` and none is queued. */
  private endWhenIdle(thread: LookThread, afterMs: number): void {
    thread.idleTimer = setTimeout(() => {
      if (this.thread !== thread) return;
      this.collect(thread, undefined);
      const quietMs = Date.now() - this.lastAskMs;
      if (thread.queued.size > 0 || quietMs < this.opts.idleMs) {
        this.endWhenIdle(thread, Math.max(this.opts.idleMs - quietMs, 1));
        return;
      }
      this.thread = undefined;
      this.idleEnded++;
      void thread.worker.terminate();
    }, afterMs);
    thread.idleTimer.unref();
  }

  hostId(): string {
    return this.local.hostId();
  }

  /*
   * The reads below stay on this thread, each with a stated bound (measured in the issue 25
   * session note), because an answer that came late would cost more than the read:
   * - buildId: the first 16 KiB of a file, cached by file identity (a few µs warm). In the
   *   worker it would queue behind slow open-files looks, and a program's identity is decided
   *   once, at its exec: a late answer would lose the renamed shell it exists to catch. A file
   *   on a hung mount would block it (as it would block the exec that runs it).
   * - processRecord: stat, status, three ns links and at most 64 KiB of cmdline; only when the table is
   *   seeded from /proc at start.
   * - environment: environ read whole, at most the kernel's 6 MiB bound on an exec's argv and
   *   environment (proc-host.ts: a variable after padding must not hide; 0.46 ms for a padded
   *   1.7 MiB one, the exec itself copies as much); only for rules on `process.env_vars`, at
   *   the exec, where a late answer would find the process gone.
   * - tcpSockets: /proc/net/tcp{,6} once, as RELAY-001 is prepared before the sensor attaches;
   *   later only when a relay chain reaches a socket no connect record names, once per network
   *   namespace per evaluation and at most NETNS_TABLES namespaces (relay-graph.ts): the read
   *   costs what the host's whole TCP hash table costs to walk (~11 ms on a 24 GiB host),
   *   whichever namespace it shows, and a late answer would leave that shell undecided.
   * - netNamespace: one readlink.
   * - regularFile: realpath and stat of the installed interpreters' system paths, once.
   * - liveFacts, workingDirectory, cgroupPath, cgroupV1ContainerPath, names: one small file or link each.
   */
  buildId(path: string): BuildIdLook {
    return this.local.buildId(path);
  }

  pathSeenBy(pid: number, path?: string): string {
    return this.local.pathSeenBy(pid, path);
  }

  bootId(): string {
    return this.local.bootId();
  }

  processIds(): number[] {
    return this.local.processIds();
  }

  processRecord(pid: number) {
    return this.local.processRecord(pid);
  }

  liveFacts(pid: number, startNs: number) {
    return this.local.liveFacts(pid, startNs);
  }

  workingDirectory(pid: number, startNs: number) {
    return this.local.workingDirectory(pid, startNs);
  }

  environment(pid: number, startNs: number, names: ReadonlySet<string>) {
    return this.local.environment(pid, startNs, names);
  }

  tcpSockets(pid?: number) {
    return this.local.tcpSockets(pid);
  }

  netNamespace(pid?: number) {
    return this.local.netNamespace(pid);
  }

  unixSocketInodes(pid?: number) {
    return this.local.unixSocketInodes(pid);
  }

  regularFile(path: string) {
    return this.local.regularFile(path);
  }

  userName(uid: number) {
    return this.local.userName(uid);
  }

  groupName(gid: number) {
    return this.local.groupName(gid);
  }

  cgroupPath(cgroupId: number, pid: number) {
    return this.local.cgroupPath(cgroupId, pid);
  }

  cgroupV1ContainerPath(pid: number, startNs: number) {
    return this.local.cgroupV1ContainerPath(pid, startNs);
  }

  containerMetadata(container: ContainerIdentity, viaPids: readonly number[]) {
    return this.local.containerMetadata(container, viaPids);
  }
}
