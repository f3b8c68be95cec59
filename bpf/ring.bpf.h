/* SPDX-License-Identifier: GPL-2.0-only */
/* Ring policy: record headers, counters, when a record wakes the reader, and which detection
 * records the detection ring admits. */
#ifndef SOCKEYE_RING_BPF_H
#define SOCKEYE_RING_BPF_H

#include "common.bpf.h"

enum counter_field { COUNT_EMITTED, COUNT_LOST, COUNT_ERRORS };

static __always_inline void count(__u32 hook, enum counter_field field)
{
	struct hook_counter *c = bpf_map_lookup_elem(&hook_counters, &hook);
	if (!c)
		return;
	/* Per-CPU slot: no other CPU writes it, so a plain increment is safe. */
	if (field == COUNT_EMITTED)
		c->emitted++;
	else if (field == COUNT_LOST)
		c->lost++;
	else
		c->errors++;
}

/*
 * A wakeup is an irq_work and, when the reader sleeps on another CPU, an IPI: costly on
 * every record (in this VM kind it cut the records one CPU can produce to a third). So a
 * record wakes the reader only when none on this CPU did in the last wakeup_interval_ns; the
 * ones in between are picked up by the reader's polling (native/ring_reader.cc). An isolated
 * record, what a real detection looks like, always wakes the reader at once.
 */
static __always_inline __u64 submit_flags(__u32 ring, __u64 now)
{
	__u64 *last;

	if (!wakeup_interval_ns)
		return 0;
	last = bpf_map_lookup_elem(&ring_last_wakeup, &ring);
	if (!last)
		return 0;
	if (now - *last < wakeup_interval_ns)
		return BPF_RB_NO_WAKEUP;
	*last = now;
	return BPF_RB_FORCE_WAKEUP;
}

/* Context records (exec, fork, exit, outbound connects) wake nobody below a fill level of
 * their ring, in eighths: the reader reads every ring at each detection's wakeup and at least
 * once per poll timeout. Past the level a flood wakes it as detections do, before the ring
 * overflows. They share the process ring's wakeup slot. */
static __always_inline __u64 context_submit_flags(void *ring, __u8 wakeup_eighths, __u64 now)
{
	__u64 size = bpf_ringbuf_query(ring, BPF_RB_RING_SIZE);
	__u64 used = bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA);

	if (used * 8 < size * wakeup_eighths)
		return BPF_RB_NO_WAKEUP;
	return submit_flags(SOCKEYE_RING_PROCESS, now);
}

/*
 * Process records (exec, fork, exit, credential changes, accepts) are context for detections,
 * not detections, and every fork+exec makes three of them: woken for each, the reader cost a fork+exec of /bin/true
 * 42 µs with a C reader and 115 µs with the addon (bench/README.md). So below a fill level
 * they wake nobody: the reader reads every ring at every detection's wakeup (a detection
 * always finds its process's exec) and at least once per poll timeout (native/ring_reader.cc).
 * Past the level, an exec flood wakes the reader as detections do, before the ring overflows.
 */
static __always_inline __u64 process_submit_flags(__u64 now)
{
	return context_submit_flags(&process_events, process_wakeup_eighths, now);
}

/* A record of `hook` dropped on its way into `ring`, for `reason`: counted as the hook's loss
 * and in the ring's drops by reason. */
static __always_inline void count_drop(__u32 hook, __u32 ring, __u32 reason)
{
	__u32 slot = ring * SOCKEYE_DROP_REASON_COUNT + reason;
	__u64 *n = bpf_map_lookup_elem(&ring_drops, &slot);

	count(hook, COUNT_LOST);
	if (n)
		*n += 1; /* per-CPU slot */
}

/* The drop reason, or ADMITTED: whether this (process, fd) had a record admitted under
 * pressure within the window. */
#define ADMITTED -1

static __always_inline int admit_repeat(__u64 key, int reason)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 *last = bpf_map_lookup_elem(&detection_admitted, &key);

	if (last && now - *last < detection_repeat_window_ns)
		return reason;
	bpf_map_update_elem(&detection_admitted, &key, &now, BPF_ANY);
	return ADMITTED;
}

/* Dup and connect records onto stdio fd `fd`: under pressure, only the first per (process,
 * fd) per window, so a process flooding matching dups cannot push out another's first one. */
static __always_inline int admit_detection(int fd)
{
	__u64 size = bpf_ringbuf_query(&detection_events, BPF_RB_RING_SIZE);
	__u64 used = bpf_ringbuf_query(&detection_events, BPF_RB_AVAIL_DATA);

	if (used * 8 < size * detection_pressure_eighths)
		return ADMITTED;
	return admit_repeat((bpf_get_current_pid_tgid() & 0xffffffff00000000ull) | (__u32)fd, SOCKEYE_DROP_REPEAT);
}

/* An exec record of `bytes` with an inet socket on stdio, by `uid`: within the share large
 * records may fill, and past a quarter one per uid per window (sockeye_settings.h). */
static __always_inline int admit_large_detection(__u32 bytes, __u32 uid)
{
	__u64 size = bpf_ringbuf_query(&detection_events, BPF_RB_RING_SIZE);
	__u64 used = bpf_ringbuf_query(&detection_events, BPF_RB_AVAIL_DATA);

	if ((used + bytes) * 8 > size * detection_large_eighths)
		return SOCKEYE_DROP_LARGE_SHARE;
	if (used * 8 < size * detection_source_eighths)
		return ADMITTED;
	return admit_repeat(0xffffffff00000000ull | uid, SOCKEYE_DROP_SOURCE_SHARE);
}

static __always_inline void fill_header(struct event_header *h, __u16 kind, __u16 size)
{
	h->kind = kind;
	h->size = size;
	h->cpu = bpf_get_smp_processor_id();
	h->time_ns = bpf_ktime_get_ns();
}

#endif /* SOCKEYE_RING_BPF_H */
