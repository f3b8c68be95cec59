import { execFileSync } from "node:child_process";
import { chmod, chown, link, lstat, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FileOutput } from "sockeye";
import { numberedFindings } from "./fixtures.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "sockeye-file-output-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The pids of the findings in a file, in order. */
async function pidsIn(path: string): Promise<number[]> {
  const text = await readFile(path, "utf8");
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) => (JSON.parse(line) as { process: { pid: number } }).process.pid);
}

describe("file output", () => {
  const findings = numberedFindings(7); // pids 0-6: one-digit pids, so every line has one size
  const lineBytes = Buffer.byteLength(`${JSON.stringify(findings[0])}\n`);

  it("rotates by size: file → file.1 → file.2, the oldest deleted, every file 0600", async () => {
    const path = join(dir, "findings.jsonl");
    const output = new FileOutput({ path, maxBytes: 2 * lineBytes + 1, keep: 2 });
    await output.open();
    output.write(findings.slice(0, 3));
    output.write(findings.slice(3));
    expect(await output.close(2000)).toEqual({ complete: true, abandoned: 0 });

    expect((await readdir(dir)).sort()).toEqual(["findings.jsonl", "findings.jsonl.1", "findings.jsonl.2"]);
    expect(await pidsIn(path)).toEqual([6]);
    expect(await pidsIn(`${path}.1`)).toEqual([4, 5]);
    expect(await pidsIn(`${path}.2`)).toEqual([2, 3]); // [0, 1] was file.2 before the last rotation
    for (const name of await readdir(dir)) expect((await stat(join(dir, name))).mode & 0o777).toBe(0o600);
    expect(output.stats()).toMatchObject({ name: "file", written: 7, rotations: 3, queueDepth: 0 });
  });

  it("appends to an existing file and counts its size toward the first rotation", async () => {
    const path = join(dir, "findings.jsonl");
    await writeFile(path, `${JSON.stringify(findings[0])}\n`, { mode: 0o600 });
    const output = new FileOutput({ path, maxBytes: 2 * lineBytes, keep: 1 });
    await output.open();
    output.write(findings.slice(1, 4));
    await output.close(2000);
    expect(await pidsIn(`${path}.1`)).toEqual([0, 1]);
    expect(await pidsIn(path)).toEqual([2, 3]);
  });

  it("with keep 0 starts the file afresh instead of keeping rotated copies", async () => {
    const path = join(dir, "findings.jsonl");
    const output = new FileOutput({ path, maxBytes: lineBytes, keep: 0 });
    await output.open();
    output.write(findings.slice(0, 3));
    await output.close(2000);
    expect(await readdir(dir)).toEqual(["findings.jsonl"]);
    expect(await pidsIn(path)).toEqual([2]);
    expect(output.stats().rotations).toBe(2);
  });

  it("rejects at open with one line when the directory does not exist", async () => {
    const output = new FileOutput({ path: join(dir, "missing", "findings.jsonl"), name: "audit-file" });
    await expect(output.open()).rejects.toThrow(
      new RegExp(`^output audit-file: directory ${dir}/missing does not exist$`),
    );
  });

  it("rejects at open when the path is a directory", async () => {
    const error = await new FileOutput({ path: dir }).open().then(
      () => undefined,
      (failure: Error) => failure,
    );
    expect(error?.message).toBe(`output file: ${dir} is a directory, not a regular file`);
    expect(error?.message).not.toContain("\n");
  });

  // A findings file is opened by root: whatever sits at its path must not redirect, widen or
  // block it.
  describe("refuses what is not a regular file of its own", () => {
    const openError = (output: FileOutput) =>
      output.open().then(
        () => undefined,
        (failure: Error) => failure.message,
      );

    it("a symlink planted at the path: refused, its target untouched", async () => {
      const target = join(dir, "target");
      await writeFile(target, "precious\n", { mode: 0o644 });
      const path = join(dir, "findings.jsonl");
      await symlink(target, path);
      expect(await openError(new FileOutput({ path }))).toBe(`output file: ${path} is a symbolic link; give the path of the file itself`);
      expect(await readFile(target, "utf8")).toBe("precious\n");
      expect((await stat(target)).mode & 0o777).toBe(0o644);
    });

    it.each([0o644, 0o666])("an existing file of mode %o is made 0600", async (mode) => {
      const path = join(dir, "findings.jsonl");
      await writeFile(path, "");
      await chmod(path, mode);
      const output = new FileOutput({ path });
      await output.open();
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      await output.close(2000);
    });

    it("/dev/null: refused, never opened for rotation", async () => {
      expect(await openError(new FileOutput({ path: "/dev/null" }))).toBe("output file: /dev/null is a character device, not a regular file");
    });

    it("a FIFO with no reader: refused at once instead of blocking the start", async () => {
      const path = join(dir, "findings.fifo");
      execFileSync("mkfifo", [path]);
      const started = performance.now();
      expect(await openError(new FileOutput({ path }))).toBe(`output file: ${path} is a FIFO, not a regular file`);
      expect(performance.now() - started).toBeLessThan(1000);
    }, 5000);

    // Whoever can write to a folder on the way can swap what follows for a folder of their
    // own, and the file opened as root is then theirs to choose.
    it("a parent folder others can write to: refused, naming it", async () => {
      const open = join(dir, "open");
      await mkdir(open);
      await chmod(open, 0o777);
      const path = join(open, "findings.jsonl");
      expect(await openError(new FileOutput({ path }))).toBe(
        `output file: ${path} is under ${open}, which is group- or world-writable (mode 777); give a path whose folders only root or the daemon's user can write`,
      );
    });

    it("a parent folder that is a symbolic link: refused, naming it", async () => {
      await mkdir(join(dir, "real"));
      await symlink(join(dir, "real"), join(dir, "link"));
      const path = join(dir, "link", "findings.jsonl");
      expect(await openError(new FileOutput({ path }))).toBe(`output file: ${path} is under ${join(dir, "link")}, which is a symbolic link; give the real path`);
    });

    it.skipIf(process.geteuid?.() !== 0)("a parent folder owned by another user: refused", async () => {
      const theirs = join(dir, "theirs");
      await mkdir(theirs, { mode: 0o755 });
      await chown(theirs, 65534, 65534);
      const path = join(theirs, "findings.jsonl");
      expect(await openError(new FileOutput({ path }))).toBe(`output file: ${path} is under ${theirs}, which is owned by uid 65534, not by root or the daemon's user`);
    });

    it("a folder with the sticky bit (/tmp) is a parent like any root-owned one", async () => {
      expect((await stat(tmpdir())).mode & 0o1000).toBe(0o1000);
      const output = new FileOutput({ path: join(dir, "findings.jsonl") });
      await output.open();
      await output.close(2000);
    });

    it("an existing file with a second link: refused, the other name untouched", async () => {
      const other = join(dir, "other");
      await writeFile(other, "precious\n", { mode: 0o600 });
      const path = join(dir, "findings.jsonl");
      await link(other, path);
      expect(await openError(new FileOutput({ path }))).toBe(`output file: ${path} has 2 links: its lines would also reach the other names; give a path of its own`);
      expect(await readFile(other, "utf8")).toBe("precious\n");
    });

    it.skipIf(process.geteuid?.() !== 0)("an existing file of another owner: refused, left as it was", async () => {
      const path = join(dir, "findings.jsonl");
      await writeFile(path, "theirs\n", { mode: 0o644 });
      await chown(path, 65534, 65534);
      expect(await openError(new FileOutput({ path }))).toBe(`output file: ${path} is owned by uid 65534, not by the daemon (uid 0); remove it or give another path`);
      expect((await stat(path)).mode & 0o777).toBe(0o644);
    });

    it("rotation renames and deletes only regular files", async () => {
      const path = join(dir, "findings.jsonl");
      const output = new FileOutput({ path, maxBytes: lineBytes, keep: 2 });
      await output.open();
      output.write(findings.slice(0, 1));
      await output.flush(2000);
      // The oldest rotated path, which rotation would delete, and the live path, which it
      // would rename, replaced by what is not a regular file.
      execFileSync("mkfifo", [`${path}.2`]);
      await unlink(path);
      execFileSync("mkfifo", [path]);
      output.write(findings.slice(1, 2));
      await output.close(2000);
      expect((await lstat(`${path}.2`)).isFIFO()).toBe(true);
      expect((await lstat(path)).isFIFO()).toBe(true);
      expect((await readdir(dir)).sort()).toEqual(["findings.jsonl", "findings.jsonl.2"]);
      expect(output.stats()).toMatchObject({ written: 1, rotations: 0, dropped: { write_error: 1 } });
      expect(output.stats().lastError).toBe(`output file: ${path}.2 is a FIFO, not a regular file: not rotated`);
    });
  });
});
