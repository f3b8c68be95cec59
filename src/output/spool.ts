/**
 * The on-disk spool of a durable output: every finding is appended here before delivery and
 * removed once the receiver acknowledged it, so a receiver outage, a daemon restart or a
 * SIGKILL costs nothing but a delay, and a reboot at most the last fsync interval.
 *
 * Layout: append-only segment files `<first seq, 16 digits>.seg` and `acked` (the highest
 * sequence number acknowledged, rewritten by rename). Each record is framed as
 *
 *   u32 payload length · u32 CRC-32 of the rest · f64 seq · f64 time (ms) · payload
 *
 * A record is appended with one synchronous write(2) before write() returns: from then on it
 * is in the page cache and survives the death of the process. fsync (segments, the folder,
 * `acked`) runs every `fsyncIntervalMs`. Bytes that do not frame (a power cut mid-write, a
 * corrupt record) are skipped up to the next whole record, and a segment found at open is
 * never appended to again, so damage costs only the records it hit. `acked` lagging behind
 * (a crash before it was rewritten) means records delivered twice, which the receiver
 * deduplicates by the record's id.
 *
 * The folder is checked from `/` (trusted-path.ts) and opened once; every later operation
 * goes through that descriptor, as `/proc/self/fd/<fd>/<name>` (Node has no openat): the
 * magic link names the opened folder itself, so a folder or link swapped in under its path
 * afterwards is never used. Files are created O_EXCL|O_NOFOLLOW, and read O_NOFOLLOW.
 *
 * One process per folder: `owner.pid` names the holder by pid, start time and boot id, an
 * identity no other process ever has, so a record left by a killed daemon or an earlier boot
 * is stale whatever runs under that pid now.
 *
 * Bounded twice: past `maxBytes` the oldest segment is dropped (its unacknowledged records
 * counted as spool_full), and records older than `maxAgeMs` are dropped unsent (spool_expired).
 * Records appended with a rank (spooled-output.ts: a started incident, then severity) go by
 * rank at the byte bound: a record whose room would cost an older segment holding an
 * unacknowledged record of a higher rank is refused instead (counted as spool_full), so a
 * flood of low findings cannot push a waiting high one out. Segments found at open have no
 * rank: the oldest go first, as without ranks.
 */
import { closeSync, constants, fstatSync, fsync, fsyncSync, ftruncateSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { open as openFile } from "node:fs/promises";
import { EXIT_REFUSED, SockeyeError, OptionError } from "../errors.js";
import { daemonUid, untrustedParent } from "./trusted-path.js";

/** node:zlib loads with the first spooled record, not with every daemon. */
const crc32 = (data: Uint8Array) => process.getBuiltinModule("node:zlib").crc32(data);

export const DEFAULT_SPOOL_DIR = "/var/lib/sockeye/spool";
export const DEFAULT_SPOOL_MAX_BYTES = 256 * 1024 * 1024;
export const DEFAULT_SPOOL_MAX_AGE_MS = 24 * 3600 * 1000;
export const DEFAULT_SPOOL_FSYNC_INTERVAL_MS = 1000;

export interface SpoolOptions {
  dir?: string;
  /** Bytes on disk before the oldest segment is dropped (default 256 MiB). */
  maxBytes?: number;
  /** Records older than this are dropped unsent (default 24 h). */
  maxAgeMs?: number;
  /** A segment is closed past this size (default maxBytes / 8, at most 4 MiB): the unit dropped at the byte bound. */
  segmentBytes?: number;
  /** How often appends and acknowledgements are forced to disk (default 1 s; 0: at every append). */
  fsyncIntervalMs?: number;
  /** Told about a torn tail skipped at open, or a failed fsync; one line each. */
  onTrouble?: (problem: string) => void;
  now?: () => number;
}

export interface SpoolRecord {
  seq: number;
  timeMs: number;
  payload: Buffer;
}

export interface SpoolStats {
  dir: string;
  /** Records not yet acknowledged. */
  depth: number;
  bytes: number;
  /** Age of the oldest unacknowledged record (at most that of its segment's first record); 0 when empty. */
  oldestAgeMs: number;
  /** Records dropped unsent, since this process opened the spool. */
  droppedFull: number;
  droppedExpired: number;
  /** Bytes skipped at open that did not frame (torn tails, corrupt records). */
  tornBytes: number;
}

/** A spool folder the daemon cannot trust or use: one line naming it. */
export class SpoolError extends SockeyeError {
  constructor(dir: string, problem: string) {
    super(`spool ${dir}: ${problem}`.replace(/\s*[\r\n]+\s*/g, " "), "SOCKEYE_SPOOL", EXIT_REFUSED);
  }
}

interface Segment {
  name: string;
  firstSeq: number;
  lastSeq: number;
  /** Bytes of whole records: what a reader may read, whatever follows on disk. */
  bytes: number;
  firstTimeMs: number;
  lastTimeMs: number;
  /** The segment appended to; only the newest, and never one found at open. */
  fd?: number;
  /** Per rank, the last seq of a record of that rank in this segment (ranked appends only). */
  lastSeqByRank?: number[];
}

/** Ranks a ranked append may give (0 = lowest); see the head comment. */
export const SPOOL_RANKS = 8;

const HEADER_BYTES = 24;
/** A length beyond this is garbage, not a finding (findings are a few KiB). */
const MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;
const SEGMENT_NAME = /^\d{16}(-\d+)?\.seg$/;

function frame(seq: number, timeMs: number, payload: Buffer): Buffer {
  const record = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
  record.writeUInt32LE(payload.length, 0);
  record.writeDoubleLE(seq, 8);
  record.writeDoubleLE(timeMs, 16);
  payload.copy(record, HEADER_BYTES);
  record.writeUInt32LE(crc32(record.subarray(8)), 4);
  return record;
}

/** The end of the whole record at `offset` whose seq follows `afterSeq`, or -1. */
function recordEnd(bytes: Buffer, offset: number, afterSeq: number): number {
  if (offset + HEADER_BYTES > bytes.length) return -1;
  const length = bytes.readUInt32LE(offset);
  const end = offset + HEADER_BYTES + length;
  if (length > MAX_PAYLOAD_BYTES || end > bytes.length) return -1;
  // Cheap header checks first: while resyncing, most offsets fail them without a CRC.
  const seq = bytes.readDoubleLE(offset + 8);
  if (!Number.isSafeInteger(seq) || seq <= afterSeq || !Number.isFinite(bytes.readDoubleLE(offset + 16))) return -1;
  return crc32(bytes.subarray(offset + 8, end)) === bytes.readUInt32LE(offset + 4) ? end : -1;
}

/**
 * The whole records in `bytes`, how many bytes up to the end of the last one, and how many
 * bytes before that did not frame: after a bad record the reading resumes at the next
 * offset where a whole record with a later seq starts.
 */
function unframe(bytes: Buffer): { records: SpoolRecord[]; length: number; skipped: number } {
  const records: SpoolRecord[] = [];
  let offset = 0;
  let length = 0;
  let skipped = 0;
  let lastSeq = 0;
  while (offset + HEADER_BYTES <= bytes.length) {
    const end = recordEnd(bytes, offset, lastSeq);
    if (end < 0) {
      offset++;
      continue;
    }
    skipped += offset - length;
    lastSeq = bytes.readDoubleLE(offset + 8);
    records.push({ seq: lastSeq, timeMs: bytes.readDoubleLE(offset + 16), payload: bytes.subarray(offset + HEADER_BYTES, end) });
    offset = length = end;
  }
  return { records, length, skipped };
}

const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW;

/**
 * Refuses a folder someone else could write to or swap, itself or a folder above it:
 * findings replayed from it are sent to the SIEM as the host's own. Creates it (0700) when
 * missing. Returns a descriptor of the folder it checked.
 */
function openDirectory(dir: string): number {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw new SpoolError(dir, `cannot create: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const parent = untrustedParent(dir);
  if (parent !== undefined) throw new SpoolError(dir, `${parent.folder} ${parent.problem}`);
  const stat = lstatSync(dir);
  if (stat.isSymbolicLink()) throw new SpoolError(dir, "is a symbolic link; give the real folder");
  if (!stat.isDirectory()) throw new SpoolError(dir, "is not a folder");
  const uid = daemonUid();
  if (stat.uid !== uid) throw new SpoolError(dir, `is owned by uid ${stat.uid}, not by the daemon (uid ${uid})`);
  if ((stat.mode & 0o022) !== 0) throw new SpoolError(dir, `is group- or world-writable (mode ${(stat.mode & 0o777).toString(8)}); chmod 700 it`);
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  const opened = fstatSync(fd);
  if (opened.dev !== stat.dev || opened.ino !== stat.ino) {
    closeSync(fd);
    throw new SpoolError(dir, "changed while it was checked");
  }
  return fd;
}

/** This process as no other ever is: pid, start time in clock ticks since boot, boot id. */
function processIdentity(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const startTicks = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
    return `${pid} ${startTicks} ${readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim()}`;
  } catch {
    return undefined;
  }
}

/** Another live process using the folder would truncate and delete under this one. */
function claimFolder(dir: string, at: (name: string) => string): void {
  const path = at("owner.pid");
  const self = processIdentity(process.pid);
  if (self === undefined) throw new SpoolError(dir, "cannot read /proc/self/stat to claim the folder");
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number | undefined;
    try {
      fd = openSync(path, CREATE_FLAGS, 0o600);
      writeSync(fd, `${self}\n`);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw new SpoolError(dir, `cannot write owner.pid: ${(error as NodeJS.ErrnoException).code}`);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    const owner = readSmallFile(path).toString("utf8").trim();
    const pid = Number.parseInt(owner, 10);
    if (owner !== self && processIdentity(pid) === owner) throw new SpoolError(dir, `is in use by process ${pid}`);
    unlinkSync(path); // left by a process that is gone (SIGKILL, a crash, an earlier boot)
  }
  throw new SpoolError(dir, "cannot claim owner.pid");
}

/** A file of the spool, never through a symlink. */
function readSmallFile(path: string): Buffer {
  const fd = openSync(path, READ_FLAGS);
  try {
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

export class Spool {
  readonly dir: string;
  private readonly maxBytes: number;
  private readonly maxAgeMs: number;
  private readonly segmentBytes: number;
  private readonly fsyncIntervalMs: number;
  private readonly onTrouble: (problem: string) => void;
  private readonly now: () => number;
  /** The folder checked at open; every later operation goes through it. */
  private readonly dirFd: number;
  private segments: Segment[] = [];
  private nextSeq = 1;
  private acked = 0;
  /** The next record next() hands out. */
  private readSeq = 1;
  /** Records of one segment already read and parsed, for next(). */
  private cache: { segment: Segment; records: SpoolRecord[]; parsedBytes: number } | undefined;
  private dirty = { data: false, acked: false, folder: false };
  /** Sealed segments' descriptors, closed once their fsync is done. */
  private sealed: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private counts = { droppedFull: 0, droppedExpired: 0, tornBytes: 0 };

  constructor(options: SpoolOptions = {}) {
    this.dir = options.dir ?? DEFAULT_SPOOL_DIR;
    this.maxBytes = options.maxBytes ?? DEFAULT_SPOOL_MAX_BYTES;
    this.maxAgeMs = options.maxAgeMs ?? DEFAULT_SPOOL_MAX_AGE_MS;
    this.segmentBytes = options.segmentBytes ?? Math.min(4 * 1024 * 1024, Math.floor(this.maxBytes / 8));
    this.fsyncIntervalMs = options.fsyncIntervalMs ?? DEFAULT_SPOOL_FSYNC_INTERVAL_MS;
    this.onTrouble = options.onTrouble ?? (() => {});
    this.now = options.now ?? Date.now;
    for (const [limit, value] of [["maxBytes", this.maxBytes], ["maxAgeMs", this.maxAgeMs], ["segmentBytes", this.segmentBytes]] as const) {
      if (!(value > 0)) throw new OptionError(`${limit} must be positive, got ${value}`);
    }
    this.dirFd = openDirectory(this.dir);
    try {
      claimFolder(this.dir, (name) => this.at(name));
    } catch (error) {
      closeSync(this.dirFd);
      throw error;
    }
    try {
      this.recover();
    } catch (error) {
      unlinkSync(this.at("owner.pid"));
      closeSync(this.dirFd);
      throw error instanceof SpoolError ? error : new SpoolError(this.dir, `cannot read: ${(error as Error).message}`);
    }
    if (this.fsyncIntervalMs > 0) this.timer = setInterval(() => this.tick(), this.fsyncIntervalMs).unref();
  }

  /** The last sequence number given out (0 before any). */
  get lastSeq(): number {
    return this.nextSeq - 1;
  }

  get ackedSeq(): number {
    return this.acked;
  }

  get depth(): number {
    return this.lastSeq - this.acked;
  }

  /**
   * Appends the payloads in order, synchronously: when this returns they survive the
   * process. Throws on a write error (ENOSPC, EIO); then none of them is in the spool.
   * `ranks` (one per payload, 0 to SPOOL_RANKS - 1): at the byte bound, payloads that would
   * push out an older waiting one of a higher rank are refused and counted (head comment).
   */
  append(payloads: readonly (string | Buffer)[], ranks?: readonly number[]): void {
    if (this.closed) throw new SpoolError(this.dir, "is closed");
    if (ranks !== undefined) ({ payloads, ranks } = this.admitByRank(payloads, ranks));
    if (payloads.length === 0) return;
    const timeMs = this.now();
    const frames = payloads.map((payload, index) => frame(this.nextSeq + index, timeMs, Buffer.isBuffer(payload) ? payload : Buffer.from(payload)));
    const bytes = Buffer.concat(frames);
    let active = this.segments.at(-1);
    if (active?.fd === undefined || active.bytes >= this.segmentBytes) active = this.startSegment(timeMs);
    let written = 0;
    try {
      while (written < bytes.length) written += writeSync(active.fd!, bytes, written);
    } catch (error) {
      // A partial write would leave a tail no reader trusts: cut it off, or when even that
      // fails, seal the segment at its last whole record so the next append starts another.
      if (written > 0) {
        try {
          ftruncateSync(active.fd!, active.bytes);
        } catch {
          this.seal(active);
        }
      }
      throw error;
    }
    if (active.lastSeq < active.firstSeq) active.firstTimeMs = timeMs;
    active.bytes += bytes.length;
    active.lastSeq = this.nextSeq + payloads.length - 1;
    active.lastTimeMs = timeMs;
    if (ranks !== undefined) {
      const bySeq = (active.lastSeqByRank ??= new Array<number>(SPOOL_RANKS).fill(-1));
      ranks.forEach((rank, index) => (bySeq[rank] = this.nextSeq + index));
    }
    this.nextSeq += payloads.length;
    this.dirty.data = true;
    if (this.fsyncIntervalMs === 0) fsyncSync(active.fd!);
    this.enforceBounds();
  }

  /**
   * Up to `max` records after those handed out already, oldest first; [] when there are
   * none. Records past their age are dropped here rather than sent.
   */
  async next(max: number): Promise<SpoolRecord[]> {
    this.expire();
    const segment = this.segments.find((candidate) => candidate.lastSeq >= this.readSeq && candidate.lastSeq >= candidate.firstSeq);
    if (segment === undefined) return [];
    let cache = this.cache;
    if (cache?.segment !== segment) cache = this.cache = { segment, records: [], parsedBytes: 0 };
    if (cache.parsedBytes < segment.bytes && !cache.records.some((record) => record.seq >= this.readSeq)) {
      try {
        const more = await readRange(this.at(segment.name), cache.parsedBytes, segment.bytes - cache.parsedBytes);
        const { records, length } = unframe(more);
        cache.records = records;
        cache.parsedBytes += length;
      } catch (error) {
        // Dropped at the byte bound while being read: the next call starts after it.
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
        throw error;
      }
    }
    const start = cache.records.findIndex((record) => record.seq >= this.readSeq);
    if (start < 0) {
      // Nothing parsed reaches readSeq: a segment whose records stop short of what its
      // index said (read at open, or truncated under us); move on rather than loop.
      this.readSeq = segment.lastSeq + 1;
      return this.next(max);
    }
    const records = cache.records.slice(start, start + max);
    this.readSeq = records.at(-1)!.seq + 1;
    // Within a segment, record by record: its first records may be past the age, the rest not.
    const cutoff = this.now() - this.maxAgeMs;
    const fresh = records.findIndex((record) => record.timeMs >= cutoff);
    if (fresh === 0) return records;
    const expired = fresh < 0 ? records : records.slice(0, fresh);
    this.counts.droppedExpired += expired.filter((record) => record.seq > this.acked).length;
    this.ack(expired.at(-1)!.seq);
    return fresh < 0 ? this.next(max) : records.slice(fresh);
  }

  /** Every record up to `seq` is delivered: removed, and next() never hands it out again. */
  ack(seq: number): void {
    if (seq <= this.acked) return;
    this.acked = Math.min(seq, this.lastSeq);
    this.readSeq = Math.max(this.readSeq, this.acked + 1);
    this.dirty.acked = true;
    while (this.segments.length > 0 && this.segments[0]!.lastSeq <= this.acked) this.removeSegment(this.segments[0]!);
    if (this.fsyncIntervalMs === 0) this.persistAcked();
  }

  /** Delivery failed: next() starts again at the first unacknowledged record. */
  rewind(): void {
    this.readSeq = this.acked + 1;
  }

  stats(): SpoolStats {
    const head = this.cache?.records.find((record) => record.seq === this.acked + 1)?.timeMs ?? this.segments.find((segment) => segment.lastSeq > this.acked)?.firstTimeMs;
    return {
      dir: this.dir,
      depth: this.depth,
      bytes: this.segments.reduce((sum, segment) => sum + segment.bytes, 0),
      oldestAgeMs: this.depth > 0 && head !== undefined ? Math.max(0, this.now() - head) : 0,
      ...this.counts,
    };
  }

  /** Forces everything to disk and releases the folder. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    for (const segment of this.segments) {
      if (segment.fd !== undefined) this.seal(segment);
    }
    for (const fd of this.sealed.splice(0)) {
      fsyncSync(fd);
      closeSync(fd);
    }
    this.syncFolder();
    this.persistAcked();
    unlinkSync(this.at("owner.pid"));
    closeSync(this.dirFd);
  }

  /** `name` in the folder opened at start, whatever its path names now. */
  private at(name: string): string {
    return `/proc/self/fd/${this.dirFd}/${name}`;
  }

  private recover(): void {
    try {
      const text = readSmallFile(this.at("acked")).toString("utf8").trim();
      if (/^\d+$/.test(text)) this.acked = Number(text);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    const names = readdirSync(this.at("")).filter((name) => SEGMENT_NAME.test(name)).sort();
    for (const name of names) {
      const bytes = readSmallFile(this.at(name));
      const { records, length, skipped } = unframe(bytes);
      const unframed = skipped + bytes.length - length;
      if (unframed > 0) {
        this.counts.tornBytes += unframed;
        this.onTrouble(`spool ${this.dir}: ${name}: ${unframed} bytes that do not frame skipped (a torn write or a corrupt record)`);
      }
      const last = records.at(-1);
      if (last === undefined || last.seq <= this.acked) {
        unlinkSync(this.at(name));
        continue;
      }
      this.segments.push({ name, firstSeq: records[0]!.seq, lastSeq: last.seq, bytes: length, firstTimeMs: records[0]!.timeMs, lastTimeMs: last.timeMs });
      this.nextSeq = Math.max(this.nextSeq, last.seq + 1);
    }
    this.segments.sort((a, b) => a.firstSeq - b.firstSeq);
    this.nextSeq = Math.max(this.nextSeq, this.acked + 1);
    this.readSeq = this.acked + 1;
  }

  private startSegment(timeMs: number): Segment {
    const previous = this.segments.at(-1);
    if (previous?.fd !== undefined) this.seal(previous);
    // A sealed segment may already bear the name of the next sequence number (its last
    // append failed); the suffix keeps the order of names the order of records.
    let name = `${String(this.nextSeq).padStart(16, "0")}.seg`;
    let fd: number;
    try {
      fd = openSync(this.at(name), CREATE_FLAGS, 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      name = `${String(this.nextSeq).padStart(16, "0")}-${timeMs}.seg`;
      fd = openSync(this.at(name), CREATE_FLAGS, 0o600);
    }
    const segment: Segment = { name, firstSeq: this.nextSeq, lastSeq: this.nextSeq - 1, bytes: 0, firstTimeMs: timeMs, lastTimeMs: timeMs, fd };
    this.segments.push(segment);
    this.dirty.folder = true;
    return segment;
  }

  private seal(segment: Segment): void {
    if (segment.fd === undefined) return;
    this.sealed.push(segment.fd);
    delete segment.fd;
  }

  private removeSegment(segment: Segment): void {
    this.segments.splice(this.segments.indexOf(segment), 1);
    // Closed by the next tick, after any fsync still running on it.
    this.seal(segment);
    if (this.cache?.segment === segment) this.cache = undefined;
    try {
      unlinkSync(this.at(segment.name));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") this.onTrouble(`spool ${this.dir}: cannot remove ${segment.name}: ${(error as Error).message}`);
    }
    this.dirty.folder = true;
  }

  /**
   * The payloads whose room costs no older record of a higher rank: those that would are
   * refused and counted as spool_full (the lowest rank goes first; among equals, the oldest).
   */
  private admitByRank(payloads: readonly (string | Buffer)[], ranks: readonly number[]): { payloads: (string | Buffer)[]; ranks: number[] } {
    const incoming = payloads.reduce<number>((sum, payload) => sum + HEADER_BYTES + Buffer.byteLength(payload), 0);
    let over = this.segments.reduce((sum, segment) => sum + segment.bytes, 0) + incoming - this.maxBytes;
    // The segments enforceBounds would drop for this append, and the highest rank they still hold.
    let outranking = -1;
    for (let i = 0; over > 0 && i < this.segments.length - 1; i++) {
      const segment = this.segments[i]!;
      over -= segment.bytes;
      segment.lastSeqByRank?.forEach((seq, rank) => {
        if (seq > this.acked) outranking = Math.max(outranking, rank);
      });
    }
    if (outranking <= 0) return { payloads: [...payloads], ranks: [...ranks] };
    const kept = { payloads: [] as (string | Buffer)[], ranks: [] as number[] };
    payloads.forEach((payload, index) => {
      if (ranks[index]! >= outranking) {
        kept.payloads.push(payload);
        kept.ranks.push(ranks[index]!);
      } else this.counts.droppedFull++;
    });
    return kept;
  }

  /** Oldest segments go first, whole; what they held unacknowledged is counted. */
  private enforceBounds(): void {
    let bytes = this.segments.reduce((sum, segment) => sum + segment.bytes, 0);
    while (bytes > this.maxBytes && this.segments.length > 1) {
      const oldest = this.segments[0]!;
      this.counts.droppedFull += this.dropThrough(oldest);
      bytes -= oldest.bytes;
    }
  }

  private expire(): void {
    const cutoff = this.now() - this.maxAgeMs;
    while (this.segments.length > 0 && this.segments[0]!.lastTimeMs < cutoff) this.counts.droppedExpired += this.dropThrough(this.segments[0]!);
  }

  /** Marks everything up to the segment's last record as gone; returns how many were unacknowledged. */
  private dropThrough(segment: Segment): number {
    const lost = segment.lastSeq - Math.max(this.acked, segment.firstSeq - 1);
    this.acked = Math.max(this.acked, segment.lastSeq);
    this.readSeq = Math.max(this.readSeq, this.acked + 1);
    this.dirty.acked = true;
    this.removeSegment(segment);
    return Math.max(0, lost);
  }

  private tick(): void {
    this.expire();
    if (this.dirty.data) {
      this.dirty.data = false;
      const active = this.segments.at(-1)?.fd;
      if (active !== undefined) fsync(active, (error) => error && this.onTrouble(`spool ${this.dir}: fsync: ${error.message}`));
    }
    for (const fd of this.sealed.splice(0)) fsync(fd, () => closeSync(fd));
    if (this.dirty.folder) this.syncFolder();
    if (this.dirty.acked) this.persistAcked();
  }

  /** Segment files created and removed are entries of the folder: they need its fsync. */
  private syncFolder(): void {
    this.dirty.folder = false;
    fsyncSync(this.dirFd);
  }

  /** Written whole to a fresh `acked.tmp` (whatever was left there removed, never followed), then renamed over `acked`. */
  private persistAcked(): void {
    this.dirty.acked = false;
    const temporary = this.at("acked.tmp");
    try {
      unlinkSync(temporary);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    const fd = openSync(temporary, CREATE_FLAGS, 0o600);
    try {
      writeSync(fd, `${this.acked}\n`);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, this.at("acked"));
  }
}

async function readRange(path: string, offset: number, length: number): Promise<Buffer> {
  const file = await openFile(path, READ_FLAGS);
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await file.read(buffer, 0, length, offset);
    return buffer.subarray(0, bytesRead);
  } finally {
    await file.close();
  }
}
