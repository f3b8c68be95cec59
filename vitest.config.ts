import { defineConfig } from "vitest/config";

// Tiers (design.md §6): unit needs no privileges; kernel loads real programs into this
// host's kernel and must run as root (in CI it fails loudly instead of skipping).
export default defineConfig({
  // Examples and tests import the package by name, as a user's agent would.
  resolve: { alias: { sockeye: new URL("./src/index.ts", import.meta.url).pathname } },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
        },
      },
      {
        extends: true,
        test: {
          name: "kernel",
          include: ["test/kernel/**/*.test.ts"],
          // One sensor at a time: tests share the kernel and assert on exact event counts.
          fileParallelism: false,
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
