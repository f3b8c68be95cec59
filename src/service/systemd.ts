/**
 * systemd (Type=notify, NotifyAccess=all) learns readiness from READY=1 on $NOTIFY_SOCKET.
 * Node cannot send on a unix datagram socket, so systemd-notify does it for us. READY also
 * names us as the main pid; STOPPING must not (sending on behalf of a pid that has exited
 * fails), and is awaited so that it is sent before we exit.
 */
import { spawn } from "node:child_process";
import { warn } from "./log.js";

export function notifySystemd(state: "READY=1" | "STOPPING=1"): Promise<void> {
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
