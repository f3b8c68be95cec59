// Fork+exec with enforcement on against the sensor alone (docs/enforcement.md): the enforcing
// programs add enforce_exec to every exec and the dup exits to every dup. Interleaved rounds of
// N fork+exec+wait of /bin/true (a shell loop, so node's spawn cost stays out), the sensor
// opened without and with enforce in each round; prints medians per exec and their ratio.
// Usage (root, after npm run build): node bench/enforce-overhead.mjs [N] [ROUNDS]
import { spawnSync } from "node:child_process";
import { openSensorSync } from "../dist/index.js";
import { findKernelInterpreters } from "../dist/enforce/interpreters.js";

const n = Number(process.argv[2] ?? 2000);
const rounds = Number(process.argv[3] ?? 4);
const found = findKernelInterpreters();
const sides = {
  sensor: {},
  enforce: { enforce: true, enforceNames: found.names, enforceExes: found.exes },
};
const perExecUs = { sensor: [], enforce: [] };
for (let r = 0; r < rounds; r++) {
  for (const [name, options] of r % 2 === 0 ? Object.entries(sides) : Object.entries(sides).reverse()) {
    const sensor = openSensorSync(options);
    sensor.subscribe(() => {});
    const start = process.hrtime.bigint();
    const out = spawnSync("/bin/sh", ["-c", `i=0; while [ $i -lt ${n} ]; do /bin/true; i=$((i+1)); done`]);
    const us = Number(process.hrtime.bigint() - start) / 1000 / n;
    if (out.status !== 0) throw new Error(`the exec loop failed: ${String(out.stderr)}`);
    await sensor.close();
    perExecUs[name].push(us);
  }
}
const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const result = {
  execs_per_round: n,
  rounds,
  fork_exec_us: { sensor: median(perExecUs.sensor), enforce: median(perExecUs.enforce) },
  ratio: median(perExecUs.enforce) / median(perExecUs.sensor),
};
console.log(JSON.stringify(result));
