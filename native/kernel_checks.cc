#include "kernel_checks.h"

#include <pthread.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

namespace sockeye {

Ia32Syscalls probe_ia32_syscalls() {
#if defined(__x86_64__)
  pid_t child = fork();
  if (child < 0) return Ia32Syscalls::unknown;
  if (child == 0) {
    // Only async-signal-safe calls in the child of a threaded process. No core file for
    // the expected SIGSEGV, and the default action, not an inherited handler (V8 has one).
    prctl(PR_SET_DUMPABLE, 0);
    signal(SIGSEGV, SIG_DFL);
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");  // ia32 getpid
    _exit(ret == long(getpid()) ? 0 : 1);
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0)
    if (errno != EINTR) return Ia32Syscalls::unknown;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Ia32Syscalls::taken;
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV) return Ia32Syscalls::refused;
  return Ia32Syscalls::unknown;
#else
  return Ia32Syscalls::not_x86;
#endif
}

const char* ia32_syscalls_name(Ia32Syscalls v) {
  switch (v) {
    case Ia32Syscalls::taken: return "taken";
    case Ia32Syscalls::refused: return "refused";
    case Ia32Syscalls::not_x86: return "not-x86";
    case Ia32Syscalls::unknown: break;
  }
  return "unknown";
}

SignalsBlocked::SignalsBlocked() {
  sigset_t all;
  sigfillset(&all);
  // Faults must still kill at once rather than loop.
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT}) sigdelset(&all, sig);
  restore_ = pthread_sigmask(SIG_BLOCK, &all, &saved_) == 0;
}

SignalsBlocked::~SignalsBlocked() {
  if (restore_) pthread_sigmask(SIG_SETMASK, &saved_, nullptr);
}

}  // namespace sockeye
