// Types of bench/host-loads.mjs for the TypeScript that imports it (the kernel tier).

/** python3 source: seconds, fds held (over a chain of ancestors where one process may not hold them all). */
export const FD_HOLDER: string;
/** python3 source: seconds, the copy's path, a 127.0.0.1 port answering "exit". */
export const BIG_EXEC: string;
/** python3 source: seconds, worker processes. */
export const ARGV_STORM: string;
