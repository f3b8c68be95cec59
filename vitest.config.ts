import { readFileSync } from "node:fs";
import { defineConfig } from "vitest/config";

const packageJson = JSON.parse(readFileSync(new URL("./package.json", import.meta.url), "utf8")) as { exports: Record<string, unknown> };

// Tiers (docs/design.md §6): unit needs no privileges; kernel loads real programs into this
// host's kernel and must run as root (in CI it fails loudly instead of skipping); vm boots
// Debian's kernel under qemu and runs the built package inside (test/vm/README.md).
// Kernel test files share the kernel and assert on exact event counts, so they run one at a
// time: `npm run test:kernel` passes --no-file-parallelism, because vitest reads that option
// from the root config only and ignores it in a project.
export default defineConfig({
  // Examples and tests import the package by name, as a user's agent would.
  // The subpaths are package.json's `exports`, each built from src/entry/<name>.ts.
  resolve: {
    alias: [
      { find: /^sockeye$/, replacement: new URL("./src/index.ts", import.meta.url).pathname },
      ...Object.keys(packageJson.exports)
        .filter((subpath) => subpath !== "." && subpath !== "./package.json")
        .map((subpath) => ({ find: `sockeye/${subpath.slice(2)}`, replacement: new URL(`./src/entry/${subpath.slice(2)}.ts`, import.meta.url).pathname })),
    ],
  },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          // A few unit tests start a real peer (rsyslogd, nats-server): on a loaded 2-core
          // machine the 5 s default timed out a TLS handshake that then passed alone.
          testTimeout: 20_000,
        },
      },
      {
        extends: true,
        test: {
          name: "kernel",
          include: ["test/kernel/**/*.test.ts"],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: {
          name: "vm",
          include: ["test/vm/**/*.test.ts"],
          // The boot is one beforeAll: fetch (first run), initramfs, qemu TCG with its own
          // timeout (run.sh --timeout, 480 s); the assertions after it are instant.
          testTimeout: 30_000,
          hookTimeout: 900_000,
        },
      },
    ],
  },
});
