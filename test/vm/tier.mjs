// `npm run test:vm [-- --matrix] [vitest options]`: the VM tier through vitest. --matrix adds
// the boots CI leaves out (test/vm/README.md); vitest refuses options it does not know, so the
// flag becomes SOCKEYE_VM_MATRIX=1 here and the rest goes to vitest as it is.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const args = process.argv.slice(2);
const matrix = args.includes("--matrix");
const vitest = fileURLToPath(new URL("../../node_modules/vitest/vitest.mjs", import.meta.url));
const child = spawn(process.execPath, [vitest, "run", "--project", "vm", ...args.filter((a) => a !== "--matrix")], {
  stdio: "inherit",
  env: { ...process.env, ...(matrix ? { SOCKEYE_VM_MATRIX: "1" } : {}) },
});
for (const signal of /** @type {const} */ (["SIGINT", "SIGTERM"])) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
