/**
 * The kernel path's decision (bpf/enforce.bpf.c), taken again in userspace from the record a
 * finding carries (its `sockeye.event`): what dry-run reports as what the kernel would have
 * done, and what "on" reports the kernel did. The kernel judges the fds the process has; the
 * records show them (an exec's stdio, a dup's socketOnFds) for the socket the record is about.
 */
import { basename } from "node:path";

export type KernelStop = "exec" | "dup";

type Fd = { kind?: unknown; origin?: unknown };

const connectedInet = (fd: Fd | undefined): boolean => fd?.kind === "inet" && fd.origin === "connected";

/**
 * Whether the kernel path stops the process a record is about, and where: `event` is a
 * finding's `sockeye.event`, `names` the interpreters' names the kernel got.
 */
export function kernelStop(event: Record<string, unknown>, processName: string, names: ReadonlySet<string>): KernelStop | undefined {
  if (event["kind"] === "exec") {
    const filename = typeof event["filename"] === "string" ? basename(event["filename"]) : "";
    // The kernel's comm is the executed file's base name cut to 15 bytes.
    if (!names.has(filename.slice(0, 15)) && !names.has(processName.slice(0, 15))) return undefined;
    const stdio = event["stdio"] as Fd[] | null | undefined;
    if (!Array.isArray(stdio)) return undefined;
    return connectedInet(stdio[0]) && (connectedInet(stdio[1]) || connectedInet(stdio[2])) ? "exec" : undefined;
  }
  if (event["kind"] === "socket_dup") {
    if (!names.has(processName.slice(0, 15))) return undefined;
    const on = event["socketOnFds"];
    const fds = Array.isArray(on) ? (on as unknown[]) : [];
    const inet = event["family"] === "inet" || event["family"] === "inet6";
    return inet && event["origin"] === "connected" && fds.includes(0) && (fds.includes(1) || fds.includes(2)) ? "dup" : undefined;
  }
  return undefined;
}
