/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What every hook area of sockeye's kernel side includes: kernel types and constants, the
 * load-time settings more than one area uses (declared here, defined once, in common.bpf.c),
 * and by concern: maps.bpf.h (the shared maps), task.bpf.h (task access), ring.bpf.h (ring
 * policy: counters, wakeups, admission). Each area is its own .bpf.c and owns what only it
 * uses; the build links them into one object (bpf/README.md).
 *
 * Capabilities and their candidate programs (userspace turns the losers off with
 * bpf_program__set_autoload before load; the table is in native/loader.cc):
 *   connect:     handle_connect_lsm  >  handle_connect_fentry  >  handle_connect_exit
 *   socket_dup:  handle_{dup,dup2,dup3,fcntl}_exit  (syscall exit tracepoints)
 *   accept:      handle_accept{,4}_exit  (marks inbound sockets for socket_dup's origin)
 *   compat:      handle_compat_exit  (tp_btf/sys_exit: ia32 syscalls; opt-in, see there)
 *   process:     handle_exec, handle_fork, handle_exit  (tp_btf sched_process_*)
 *   relay:       handle_outbound_connect_exit  (tp/syscalls/sys_exit_connect; outbound TCP
 *                connects on fds past stdio, on their own ring)
 *   udp_send:    handle_sendmsg4, handle_sendmsg6  (cgroup/sendmsg{4,6} on the cgroup v2 root:
 *                the first send of each never-connected UDP socket, on the relay ring)  >  none
 *   task_access: how every program reaches the current task and its syscall's arguments:
 *                bpf_get_current_task_btf + bpf_task_pt_regs (5.15+)  >
 *                bpf_get_current_task_btf + handle_*_enter stashes (5.11+)  >
 *                bpf_get_current_task + CO-RE reads + handle_*_enter stashes (5.8+)
 *
 * Filtering happens in the kernel (bpf/README.md): a dup whose old fd is not a socket, or whose
 * new fd is past stdio_fd_max, never leaves it; a connect on an fd past stdio_fd_max neither,
 * unless connect_all_fds is set.
 */
#ifndef SOCKEYE_COMMON_BPF_H
#define SOCKEYE_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "sockeye_events.h"
#include "sockeye_settings.h"

/* vmlinux.h carries types, not macros. */
#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define F_DUPFD 0
#define F_DUPFD_CLOEXEC 1030
#define EINPROGRESS 115

#if defined(__TARGET_ARCH_x86)
#define SYSCALL_NR_CONNECT 42
#define TS_COMPAT 0x0002 /* thread_info.status: the syscall in progress is an ia32 one */
/* arch/x86/entry/syscalls/syscall_32.tbl */
#define IA32_DUP 41
#define IA32_FCNTL 55
#define IA32_DUP2 63
#define IA32_SOCKETCALL 102
#define IA32_FCNTL64 221
#define IA32_DUP3 330
#define IA32_CONNECT 362
#define IA32_ACCEPT4 364
#define SOCKETCALL_CONNECT 3 /* socketcall's call numbers */
#define SOCKETCALL_ACCEPT 5
#define SOCKETCALL_ACCEPT4 18
#define SYSCALL_NR(regs) BPF_CORE_READ(regs, orig_ax)
#elif defined(__TARGET_ARCH_arm64)
#define SYSCALL_NR_CONNECT 203
#define SYSCALL_NR(regs) BPF_CORE_READ(regs, syscallno)
#else
#error "sockeye's BPF side knows the syscall numbers of x86 and arm64 only"
#endif

/* Load-time settings, written by userspace between open and load. */
extern const volatile __s32 stdio_fd_max;
/* Connects on every fd leave the kernel, not only those on stdio. */
extern const volatile __u8 connect_all_fds;
/* Wakeup policy of every ring (submit_flags). */
extern const volatile __u64 wakeup_interval_ns;
/* How the programs reach the current task and its syscall's arguments (the task_access row of
 * native/loader.cc): the loader clears these on kernels without the helper. */
extern const volatile __u8 use_current_task_btf; /* bpf_get_current_task_btf: 5.11+ */
extern const volatile __u8 use_task_pt_regs;     /* bpf_task_pt_regs: 5.15+ */
/* What the detection ring admits under pressure (admit_detection). */
extern const volatile __u8 detection_pressure_eighths;
extern const volatile __u64 detection_repeat_window_ns;
extern const volatile __u8 detection_large_eighths;
extern const volatile __u8 detection_source_eighths;
/* Process records wake the reader only once their ring is this full (in 1/8ths; process_submit_flags). */
extern const volatile __u8 process_wakeup_eighths;
/* Accepted inet sockets make records (struct accept_event): set only while a rule reads them. */
extern const volatile __u8 accept_records;

static __always_inline int within_stdio(long fd)
{
	return fd >= 0 && fd <= stdio_fd_max;
}

#include "maps.bpf.h"
#include "task.bpf.h"
#include "ring.bpf.h"

#endif /* SOCKEYE_COMMON_BPF_H */
