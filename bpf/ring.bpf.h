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
	return submit_flags(RING_PROCESS, now);
}

/* False when the detection ring is under pressure and this (process, fd) already had a record
 * admitted within the window: then the record is shed and counted as lost. */
static __always_inline int admit_detection(int fd)
{
	__u64 size = bpf_ringbuf_query(&detection_events, BPF_RB_RING_SIZE);
	__u64 used = bpf_ringbuf_query(&detection_events, BPF_RB_AVAIL_DATA);
	__u64 key, now, *last;

	if (used * 8 < size * detection_pressure_eighths)
		return 1;
	key = (bpf_get_current_pid_tgid() & 0xffffffff00000000ull) | (__u32)fd;
	now = bpf_ktime_get_ns();
	last = bpf_map_lookup_elem(&detection_admitted, &key);
	if (last && now - *last < detection_repeat_window_ns)
		return 0;
	bpf_map_update_elem(&detection_admitted, &key, &now, BPF_ANY);
	return 1;
}

static __always_inline void fill_header(struct event_header *h, __u16 kind, __u16 size)
{
	h->kind = kind;
	h->size = size;
	h->cpu = bpf_get_smp_processor_id();
	h->time_ns = bpf_ktime_get_ns();
}

#endif /* SOCKEYE_RING_BPF_H */
