// Small checks of what this kernel and this thread can do, free of libbpf and Node-API.
#pragma once

#include <csignal>
#include <string>

namespace sockeye {

// Whether the kernel runs ia32 syscalls (int $0x80, 32-bit binaries). Kernels of one config
// differ: some builds refuse them at run time (ia32_emulation=0, or a build with it off by
// default) although CONFIG_IA32_EMULATION=y, and an int $0x80 then dies with SIGSEGV. Only
// trying tells, so a child process tries one.
enum class Ia32Syscalls { taken, refused, unknown, not_x86 };
Ia32Syscalls probe_ia32_syscalls();
const char* ia32_syscalls_name(Ia32Syscalls v);

// Blocks every signal that can be blocked on this thread while it lives. BPF_PROG_LOAD gives
// up with EAGAIN when a signal is pending during verification, and libbpf's few retries lose
// to a steady signal source (node --cpu-prof's SIGPROF). Blocked signals stay pending and
// arrive when the guard goes; process-directed ones go to the process's other threads.
class SignalsBlocked {
 public:
  SignalsBlocked();
  ~SignalsBlocked();
  SignalsBlocked(const SignalsBlocked&) = delete;
  SignalsBlocked& operator=(const SignalsBlocked&) = delete;

 private:
  sigset_t saved_;
  bool restore_ = false;
};

}  // namespace sockeye
