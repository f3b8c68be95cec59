// SPDX-License-Identifier: GPL-2.0-only
/*
 * The maps and load-time settings more than one hook area uses (common.bpf.h declares them).
 * No programs. Linked first: bpftool 7.1's linker leaves an extern at a wrong offset in the
 * merged BTF when the object that declares it comes before the one that defines it (the
 * skeleton then fails to open: "map relo failed to find map"), so definitions go first.
 */
#include "common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __s32 stdio_fd_max = 2;
const volatile __u8 connect_all_fds = 0;
const volatile __u8 use_current_task_btf = 1;
const volatile __u8 use_task_pt_regs = 1;
/* Wakeup policy (see submit_flags): at most one consumer wakeup per ring per CPU in this
 * interval. The reader keeps polling for longer than this after its last record, so a record
 * submitted without a wakeup is still read within about one interval. 0 = wake for every
 * record the reader is not already busy with (libbpf's default). */
const volatile __u64 wakeup_interval_ns = 0;
/* A detection ring fuller than this share (in 1/8ths) admits only records whose (process, fd)
 * has not had one admitted in the last detection_repeat_window_ns: a process that floods
 * matching dups cannot fill the ring and push out another process's first detection. Three
 * quarters, not half: the reader may stall for a few ms on a busy host (a hypervisor's), and a
 * steady stream of one process's records must not be shed before the ring is really filling;
 * the last quarter (819 records at 512 KiB) still holds other processes' first records. */
const volatile __u8 detection_pressure_eighths = 6;
const volatile __u64 detection_repeat_window_ns = 1000000000ull;

struct detection_events_map detection_events SEC(".maps");
struct ring_last_wakeup_map ring_last_wakeup SEC(".maps");
struct detection_admitted_map detection_admitted SEC(".maps");
struct hook_counters_map hook_counters SEC(".maps");
struct accepted_socks_map accepted_socks SEC(".maps");
struct stashed_syscalls_map stashed_syscalls SEC(".maps");
