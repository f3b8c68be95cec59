/**
 * systemd (Type=notify, NotifyAccess=all) learns readiness from READY=1 on $NOTIFY_SOCKET.
 * Node cannot send on a unix datagram socket, so systemd-notify does it for us. READY also
 * names us as the main pid; STOPPING must not (sending on behalf of a pid that has exited
 * fails), and is awaited so that it is sent before we exit.
 */
import { spawn } from "node:child_process";
import { warn } from "./log.js";

export function notifySystemd(state: "READY=1" | "STOPPING=1" | "WATCHDOG=1"): Promise<void> {
  if (process.env["NOTIFY_SOCKET"] === undefined) return Promise.resolve();
  // --no-block: no BARRIER round trip, which would need a systemd answering it.
  const args = state === "READY=1" ? ["--no-block", `--pid=${process.pid}`, state] : ["--no-block", state];
  return new Promise((resolve) => {
    const child = spawn("systemd-notify", args, { stdio: "ignore" });
    const timer = setTimeout(resolve, 2_000).unref();
    child.on("error", (error) => {
      warn("systemd-notify failed", { state, error: error.message });
      resolve();
    });
    child.on("exit", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * With WatchdogSec= in the unit, systemd sets WATCHDOG_USEC (and WATCHDOG_PID) and restarts a
 * service that stays silent that long. The ping is a timer on the event loop, so a loop
 * frozen by a flood or a stuck read stops it: liveness means the loop answers. Returns the
 * function that stops the pings (none were started when systemd asked for none).
 */
export function startWatchdog(env: NodeJS.ProcessEnv = process.env): () => void {
  const usec = Number(env["WATCHDOG_USEC"]);
  const forPid = env["WATCHDOG_PID"];
  if (env["NOTIFY_SOCKET"] === undefined || !Number.isSafeInteger(usec) || usec <= 0) return () => {};
  if (forPid !== undefined && Number(forPid) !== process.pid) return () => {};
  // Half the period, as sd_watchdog_enabled(3) advises: one late ping is not a restart.
  const timer = setInterval(() => void notifySystemd("WATCHDOG=1"), Math.max(1, Math.floor(usec / 2000)));
  timer.unref();
  return () => clearInterval(timer);
}
