/**
 * Command-line entry of the example agent:
 *
 *   npx vite-node -c vitest.config.ts examples/custom-agent/main.ts [capture.jsonl]
 */
import { SAMPLE_CAPTURE, runAgent } from "./agent.js";

await runAgent({ capture: process.argv[2] ?? SAMPLE_CAPTURE, out: process.stdout, err: process.stderr });
