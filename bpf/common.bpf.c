// SPDX-License-Identifier: GPL-2.0-only
/*
 * The maps and load-time settings more than one hook area uses (common.bpf.h declares them).
 * No programs. Linked first: bpftool 7.1's linker leaves an extern at a wrong offset in the
 * merged BTF when the object that declares it comes before the one that defines it (the
 * skeleton then fails to open: "map relo failed to find map"), so definitions go first.
 */
#include "common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Initial values only: the loader writes every setting (sockeye_settings.h). */
const volatile __s32 stdio_fd_max = SOCKEYE_DEFAULT_STDIO_FD_MAX;
const volatile __u8 connect_all_fds = 0;
const volatile __u8 use_current_task_btf = 1;
const volatile __u8 use_task_pt_regs = 1;
const volatile __u64 wakeup_interval_ns = SOCKEYE_DEFAULT_WAKEUP_INTERVAL_US * 1000ull;
const volatile __u8 detection_pressure_eighths = SOCKEYE_DETECTION_PRESSURE_EIGHTHS;
const volatile __u64 detection_repeat_window_ns = SOCKEYE_DETECTION_REPEAT_WINDOW_NS;
const volatile __u8 detection_large_eighths = SOCKEYE_DETECTION_LARGE_EIGHTHS;
const volatile __u8 detection_source_eighths = SOCKEYE_DETECTION_SOURCE_EIGHTHS;
const volatile __u8 process_wakeup_eighths = SOCKEYE_CONTEXT_WAKEUP_EIGHTHS;
const volatile __u8 accept_records = 0;

struct detection_events_map detection_events SEC(".maps");
struct process_events_map process_events SEC(".maps");
struct ring_last_wakeup_map ring_last_wakeup SEC(".maps");
struct detection_admitted_map detection_admitted SEC(".maps");
struct hook_counters_map hook_counters SEC(".maps");
struct ring_drops_map ring_drops SEC(".maps");
struct accepted_socks_map accepted_socks SEC(".maps");
struct stashed_syscalls_map stashed_syscalls SEC(".maps");
