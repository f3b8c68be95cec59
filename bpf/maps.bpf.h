/* SPDX-License-Identifier: GPL-2.0-only */
/* The maps more than one hook area uses, declared for every area (common.bpf.c defines them
 * once). */
#ifndef SOCKEYE_MAPS_BPF_H
#define SOCKEYE_MAPS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "sockeye_events.h"
#include "sockeye_settings.h"

/*
 * The linker takes an extern map only when its definition
 * matches field for field: declaration and definition go through one named struct type.
 */

/* Detections (connect, socket_dup) get their own small ring so that an exec flood can never
 * push one out: the process ring can fill up and lose records while this one stays empty. */
struct detection_events_map {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SOCKEYE_DEFAULT_DETECTION_RING_BYTES);
};
extern struct detection_events_map detection_events SEC(".maps");

/* Process records (exec, fork, exit, credential changes, accepts): context for detections. */
struct process_events_map {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SOCKEYE_DEFAULT_PROCESS_RING_BYTES);
};
extern struct process_events_map process_events SEC(".maps");

/* Per CPU and ring: when a record last woke the reader (ns, bpf_ktime_get_ns). The relay ring
 * shares the process ring's slot. */
struct ring_last_wakeup_map {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SOCKEYE_RING_COUNT);
	__type(key, __u32);
	__type(value, __u64);
};
extern struct ring_last_wakeup_map ring_last_wakeup SEC(".maps");

/* (tgid << 32 | fd), or (0xffffffff << 32 | uid) for exec records -> when its last detection
 * record was admitted under pressure. */
struct detection_admitted_map {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, __u64);
};
extern struct detection_admitted_map detection_admitted SEC(".maps");

struct hook_counters_map {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SOCKEYE_HOOK_COUNT);
	__type(key, __u32);
	__type(value, struct hook_counter);
};
extern struct hook_counters_map hook_counters SEC(".maps");

/* Records dropped, per CPU, by ring and reason (enum sockeye_drop_reason). */
struct ring_drops_map {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SOCKEYE_RING_COUNT * SOCKEYE_DROP_REASON_COUNT);
	__type(key, __u32);
	__type(value, __u64);
};
extern struct ring_drops_map ring_drops SEC(".maps");

/* Sockets returned by accept()/accept4(), keyed by struct sock address. LRU: a busy server
 * accepts far more sockets than ever reach stdio, and old entries may go. A freed sock's
 * memory is reused for new sockets and we see no free (no kprobes), so the value holds the
 * connection's ports and peer address: a lookup counts only when they still match. */
struct accepted_sock {
	__u32 peer_addr; /* IPv4 address, or the last 4 bytes of an IPv6 one */
	__u16 local_port;
	__u16 peer_port;
};

struct accepted_socks_map {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct accepted_sock);
};
extern struct accepted_socks_map accepted_socks SEC(".maps");

/*
 * Before 5.15 (no bpf_task_pt_regs) a syscall's arguments are gone at its exit tracepoint, so
 * the enter programs (handle_*_enter, loaded only then) stash those of the calls that can
 * matter, per thread, and the exit programs and the connect hooks take them from here. A
 * thread is in one syscall at a time; `nr` says which one an entry is for.
 */
struct stashed_syscall {
	__s64 nr;
	__u64 args[3];
};

/* Entries are few and short-lived (a thread's one syscall in flight); LRU: a thread that dies
 * inside a stashed syscall leaves one behind. Sized by the loader (1 when nothing stashes). */
struct stashed_syscalls_map {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct stashed_syscall);
};
extern struct stashed_syscalls_map stashed_syscalls SEC(".maps");

#endif /* SOCKEYE_MAPS_BPF_H */
