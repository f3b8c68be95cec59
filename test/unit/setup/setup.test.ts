import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";

// scripts/setup.sh is the README's first command: on a monitored host it must leave only what
// the sensor needs, no attacker's tools and no enabled service; the wrapper it writes is run by
// root and must not be a way for another user to become root.

const isRoot = process.getuid?.() === 0;
const bash = (script: string, ...args: string[]) => spawnSync("bash", [script, ...args], { encoding: "utf8" });

function plan(...flags: string[]): { keep: string[]; removeAfterBuild: string[] } {
  const r = bash("scripts/setup.sh", "--plan", ...flags);
  expect(r.status, r.stderr).toBe(0);
  const field = (name: string) => (r.stdout.match(new RegExp(`^${name}:(.*)$`, "m"))?.[1] ?? "").trim().split(/\s+/).filter(Boolean);
  return { keep: field("keep"), removeAfterBuild: field("remove-after-build") };
}

// Tools an attacker would otherwise have to bring, compilers, and packages that bring services.
const notOnAMonitoredHost = ["netcat-traditional", "ncat", "socat", "busybox-static", "clang", "gcc", "qemu-system-x86",
  "openssh-server", "nats-server", "rsyslog", "php-cli", "ruby", "gawk", "telnet"];

describe("setup.sh: what a monitored host keeps", () => {
  it("keeps only the runtime libraries and gives back the build tools", () => {
    const p = plan();
    expect(p.keep).toEqual(["libelf1", "zlib1g"]);
    for (const pkg of notOnAMonitoredHost) expect(p.keep).not.toContain(pkg);
    expect(p.removeAfterBuild).toEqual(expect.arrayContaining(["clang", "llvm", "bpftool", "cmake"]));
  });

  it("installs the test and VM tiers' tools only with --dev", () => {
    const p = plan("--dev");
    expect(p.keep).toEqual(expect.arrayContaining(["clang", "ncat", "socat", "openssh-server", "qemu-system-x86", "busybox-static"]));
    expect(p.removeAfterBuild).toEqual([]);
  });

  it("refuses an unknown option in one line, exit 2", () => {
    const r = bash("scripts/setup.sh", "--everything");
    expect(r.status).toBe(2);
    expect(r.stderr.trimEnd().split("\n")).toEqual([expect.stringMatching(/^scripts\/setup\.sh: unknown option --everything \(/)]);
  });
});

describe("setup.sh: no service left enabled by what it installed", () => {
  const record = "/var/lib/sockeye/setup-installed";
  // In CI the test command ran setup.sh --dev, which records what it installed (possibly
  // nothing, on a machine that already had every package: then there is nothing to check).
  it.runIf(existsSync(record) || process.env.CI === "true")("no enablement link points at a unit or init script of a recorded package", () => {
    expect(existsSync(record), `${record} is missing: setup.sh did not run`).toBe(true);
    const packages = readFileSync(record, "utf8").split("\n").filter(Boolean);
    const shipped = new Set<string>();
    for (const pkg of packages) {
      const files = spawnSync("dpkg-query", ["-L", pkg], { encoding: "utf8" }).stdout.split("\n");
      for (const f of files) {
        if (/^\/(usr\/)?lib\/systemd\/system\/[^/]+\.(service|socket|timer)$/.test(f) || f.startsWith("/etc/init.d/")) shipped.add(basename(f));
      }
    }
    const enabled: string[] = [];
    const systemdDir = "/etc/systemd/system";
    if (existsSync(systemdDir)) {
      for (const dir of readdirSync(systemdDir).filter((d) => d.endsWith(".wants"))) {
        for (const link of readdirSync(join(systemdDir, dir))) if (shipped.has(link)) enabled.push(join(systemdDir, dir, link));
      }
    }
    for (const rc of ["rc2.d", "rc3.d", "rc4.d", "rc5.d", "rcS.d"].map((d) => join("/etc", d)).filter(existsSync)) {
      for (const link of readdirSync(rc).filter((l) => l.startsWith("S"))) {
        if (shipped.has(basename(readlinkSync(join(rc, link))))) enabled.push(join(rc, link));
      }
    }
    expect(enabled).toEqual([]);
  });
});

describe("install-wrapper.sh", () => {
  // A checkout whose path holds every character that could break out of a quoted string.
  function fakeCheckout(name: string): string {
    const base = mkdtempSync(join(tmpdir(), "sockeye-wrapper-"));
    chmodSync(base, 0o755);
    const checkout = join(base, name);
    mkdirSync(join(checkout, "dist", "cli"), { recursive: true, mode: 0o755 });
    writeFileSync(join(checkout, "dist", "cli", "main.js"), "process.stdout.write(JSON.stringify(process.argv.slice(2)));\n", { mode: 0o644 });
    return checkout;
  }

  it.runIf(isRoot)("writes a wrapper that runs a checkout whose path has quotes, $, backticks and spaces", () => {
    const checkout = fakeCheckout('a b"$(touch x)`id`\'c');
    const dest = join(checkout, "..", "sockeye");
    const r = bash("scripts/install-wrapper.sh", checkout, dest);
    expect(r.status, r.stderr).toBe(0);
    const run = spawnSync(dest, ["run", "$HOME", "a b", "`id`"], { encoding: "utf8", cwd: join(checkout, "..") });
    expect(run.stderr).toBe("");
    expect(JSON.parse(run.stdout)).toEqual(["run", "$HOME", "a b", "`id`"]);
    expect(existsSync(join(checkout, "..", "x"))).toBe(false);
    rmSync(join(checkout, ".."), { recursive: true, force: true });
  });

  it.runIf(isRoot)("refuses a checkout another user owns or can write, in one line", () => {
    const checkout = fakeCheckout("checkout");
    const dest = join(checkout, "..", "sockeye");
    chmodSync(checkout, 0o775);
    let r = bash("scripts/install-wrapper.sh", checkout, dest);
    expect(r.status).toBe(1);
    expect(r.stderr.trimEnd().split("\n")).toEqual([`install-wrapper: checkout: ${checkout} is writable by group or others (mode 775); run chmod go-w on it`]);
    chmodSync(checkout, 0o755);
    chownSync(join(checkout, "dist", "cli", "main.js"), 65534, 65534);
    r = bash("scripts/install-wrapper.sh", checkout, dest);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^install-wrapper: checkout: .*main\.js is not root's or is writable by group or others; run chown -R root: /);
    expect(existsSync(dest)).toBe(false);
    rmSync(join(checkout, ".."), { recursive: true, force: true });
  });

  it.runIf(!isRoot)("refuses a checkout that is not root's (run as a user, its own folders are not)", () => {
    const checkout = fakeCheckout("checkout");
    const r = bash("scripts/install-wrapper.sh", checkout, join(checkout, "..", "sockeye"));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^install-wrapper: checkout: \/.* is owned by uid \d+, not root;/);
    rmSync(join(checkout, ".."), { recursive: true, force: true });
  });
});
