/**
 * The names shells run under (the base name of the executable, which is also the kernel's comm
 * after exec). One list for both sides: the kernel wakes the reader at once for the exec of one
 * of these reading its commands from a pipe, FIFO, socketpair or terminal (bpf/process.bpf.c
 * relay_candidate: the sensor hands the list to the loader), and the rules count them as the
 * shell family of interpreters (src/rules/stdio/interpreters.ts).
 */
export const SHELL_NAMES = [
  "sh", "bash", "dash", "ash", "hush", "zsh", "ksh", "ksh93", "mksh", "pdksh", "yash", "fish", "csh", "tcsh", "rbash", "posh",
] as const;
