/**
 * JSON lines appended to a file, rotated by size: when the next lines would take the file
 * past `maxBytes`, file.{keep-1} → file.{keep}, …, file → file.1 and a fresh file is
 * started; the oldest beyond `keep` is deleted. The file is opened as private-file.ts says
 * (mode 0600, never through a symlink, never a device or FIFO), and rotation renames and
 * deletes only regular files.
 *
 * Writes go through fs.promises (libuv's thread pool), one chunk at a time, behind the
 * same bounded LineQueue as the stream outputs.
 */
import { rename, stat, unlink, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import type { Finding } from "../engine/finding.js";
import { LineOutput, type LineProgress, type QueuedLine } from "./line-output.js";
import { OutputError, describeError, encodeFinding, type StateRecord } from "./output.js";
import { UntrustedFileError, isRegularFile, openPrivateAppendFile } from "./private-file.js";
import { OptionError } from "../errors.js";
export interface FileOutputOptions {
  path: string;
  /** Defaults to "file". */
  name?: string;
  /** Size at which the file is rotated (default 100 MiB). A single longer line still goes in whole. */
  maxBytes?: number;
  /** Rotated files kept: path.1 … path.{keep} (default 5; 0 keeps none). */
  keep?: number;
  /** Bytes waiting for the disk before lines are dropped, lowest rank first (default 8 MiB). */
  maxBufferedBytes?: number;
}

export class FileOutput extends LineOutput {
  readonly path: string;
  private readonly maxBytes: number;
  private readonly keep: number;
  private handle: FileHandle | undefined;
  private size = 0;

  constructor(options: FileOutputOptions) {
    super("file", options.name ?? "file", { maxBufferedBytes: options.maxBufferedBytes });
    this.path = options.path;
    this.maxBytes = options.maxBytes ?? 100 * 1024 * 1024;
    this.keep = options.keep ?? 5;
    if (!(Number.isInteger(this.maxBytes) && this.maxBytes > 0))
      throw new OptionError(`maxBytes must be a positive integer, got ${this.maxBytes}`);
    if (!(Number.isInteger(this.keep) && this.keep >= 0)) throw new OptionError(`keep must be an integer >= 0, got ${this.keep}`);
  }

  protected async acquire(): Promise<void> {
    const directory = dirname(this.path);
    const dirStat = await stat(directory).catch((error: NodeJS.ErrnoException) => {
      throw new OutputError(this.name, `directory ${directory} ${error.code === "ENOENT" ? "does not exist" : `cannot be read (${describeError(error)})`}`);
    });
    if (!dirStat.isDirectory()) throw new OutputError(this.name, `${directory} is not a directory`);
    await this.openFile();
  }

  protected release(): Promise<void> {
    return this.closeFile();
  }

  writeState(record: StateRecord): void {
    const json = encodeFinding(record, this.counters);
    if (json !== undefined) this.enqueue(`${json}\n`);
  }

  protected formatLine(finding: Finding): string | undefined {
    const json = encodeFinding(finding, this.counters);
    return json === undefined ? undefined : `${json}\n`;
  }

  private async openFile(): Promise<void> {
    try {
      // O_APPEND: another writer (or a restarted sockeye) never has its lines overwritten.
      ({ handle: this.handle, size: this.size } = await openPrivateAppendFile(this.path));
    } catch (error) {
      if (error instanceof UntrustedFileError) throw new OutputError(this.name, error.message);
      throw new OutputError(this.name, `cannot open ${this.path}: ${describeError(error)}`);
    }
  }

  private async closeFile(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    await handle?.close();
  }

  /** Writes lines in pieces that each fit the current file, rotating between pieces. */
  protected async deliver(lines: readonly QueuedLine[], progress: LineProgress): Promise<void> {
    let start = 0;
    while (start < lines.length) {
      // A rotation that failed half way left no file open; its size is read again here.
      if (this.handle === undefined) await this.openFile();
      let end = start;
      let bytes = 0;
      while (end < lines.length && (this.size + bytes + lines[end]!.bytes <= this.maxBytes || (this.size === 0 && end === start))) {
        bytes += lines[end]!.bytes;
        end++;
      }
      if (end === start) {
        await this.rotate();
        continue;
      }
      // writeFile, unlike write, loops over short writes; O_APPEND puts every byte at the end.
      await this.handle!.writeFile(lines.slice(start, end).map((line) => line.text).join(""));
      this.size += bytes;
      progress.delivered(end - start);
      start = end;
    }
  }

  /**
   * Each path is checked before it is renamed or deleted: a device node or FIFO put in the
   * way (as root, `/dev/null` itself) fails the rotation instead of being moved or removed.
   */
  private async rotate(): Promise<void> {
    await this.closeFile();
    const oldest = this.keep === 0 ? this.path : `${this.path}.${this.keep}`;
    if (await this.rotatable(oldest)) await unlinkIfPresent(oldest);
    for (let index = this.keep - 1; index >= 0; index--) {
      const from = index === 0 ? this.path : `${this.path}.${index}`;
      if (await this.rotatable(from)) await renameIfPresent(from, `${this.path}.${index + 1}`);
    }
    this.counters.rotations++;
    await this.openFile();
  }

  private async rotatable(path: string): Promise<boolean> {
    try {
      return await isRegularFile(path, ": not rotated");
    } catch (error) {
      throw error instanceof UntrustedFileError ? new OutputError(this.name, error.message) : error;
    }
  }
}

async function unlinkIfPresent(path: string): Promise<void> {
  await unlink(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== "ENOENT") throw error;
  });
}

async function renameIfPresent(from: string, to: string): Promise<void> {
  await rename(from, to).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== "ENOENT") throw error;
  });
}
