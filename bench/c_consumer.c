// SPDX-License-Identifier: Apache-2.0
/*
 * sockeye-c-consumer: the least a userspace reader of sockeye's kernel side can do, as the
 * yardstick for the addon. Same BPF object (the skeleton the addon build generates), same
 * live programs as on a host without BPF trampolines (connect on its tracepoint fallback),
 * same two rings; a thread (SCHED_RR 1, like the addon's) drains them and only counts records,
 * by kind and by producer.
 *
 * With the argument "attach-only" nothing reads the rings: what the kernel side alone costs
 * the monitored host (the overhead part's split between kernel and userspace).
 *
 * Protocol (like bench/ts-consumer.mjs): prints {"ready":true} once attached, then one JSON
 * line of running totals per "stats" line on stdin; exits on "quit", EOF, or after
 * MAX_SECONDS.
 */
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>

#include "sockeye.skel.h"
#include "sockeye_events.h"

#define MAX_SECONDS 1800
#define POLL_TIMEOUT_MS 100 /* as native/ring_reader.cc kPollTimeoutMs */
/* The addon's default wakeup policy (native/loader.h), and the same reading loop as
 * native/ring_reader.cc, so that this is the limit of the same kernel side. */
#define WAKEUP_INTERVAL_NS 250000ull
#define QUIET_SLACK_NS 50000ull

static unsigned long long monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* Latency samples of "sockeye-probe" dups (bench/run.mjs latency part): record's BPF time to
 * the moment this reader holds it, the part of the detection latency before the addon. */
#define MAX_LATENCY_SAMPLES 8192
static unsigned long long latencies_ns[MAX_LATENCY_SAMPLES];
static unsigned int latency_count;
static pthread_mutex_t latency_lock = PTHREAD_MUTEX_INITIALIZER;

static atomic_ullong records_total;
static atomic_ullong dups_from_loadgen;
static atomic_int stopping;
/* The current read found a detection record: only those make the reader busy (ring_reader.cc). */
static int read_detections;

static int on_record(void *ctx, void *data, size_t size)
{
	const struct event_header *h = data;

	atomic_fetch_add_explicit(&records_total, 1, memory_order_relaxed);
	/* AF_INET only: the generator's own stdout (a socketpair from its parent) is AF_UNIX. */
	if (h->kind == SOCKEYE_EVENT_SOCKET_DUP && ((const struct socket_dup_event *)data)->family == 2 &&
	    !memcmp(((const struct socket_dup_event *)data)->task.comm, "sockeye-loadgen", 15))
		atomic_fetch_add_explicit(&dups_from_loadgen, 1, memory_order_relaxed);
	if (h->kind == SOCKEYE_EVENT_SOCKET_DUP &&
	    !memcmp(((const struct socket_dup_event *)data)->task.comm, "sockeye-probe", 14)) {
		unsigned long long now = monotonic_ns();
		pthread_mutex_lock(&latency_lock);
		if (latency_count < MAX_LATENCY_SAMPLES)
			latencies_ns[latency_count++] = now - h->time_ns;
		pthread_mutex_unlock(&latency_lock);
	}
	return 0;
}

static int on_detection_record(void *ctx, void *data, size_t size)
{
	read_detections = 1;
	return on_record(ctx, data, size);
}

static void *drain(void *rings)
{
	struct timespec nap = { 0, WAKEUP_INTERVAL_NS / 2 };
	unsigned long long last_read = 0, last_found = 0;

	while (!atomic_load(&stopping)) {
		int n;

		read_detections = 0; /* before the poll, which reads the ring that woke it */
		if (last_read - last_found < WAKEUP_INTERVAL_NS + QUIET_SLACK_NS) {
			nanosleep(&nap, NULL);
		} else {
			n = ring_buffer__poll(rings, POLL_TIMEOUT_MS);
			if (n < 0 && n != -EINTR)
				break;
		}
		last_read = monotonic_ns();
		n = ring_buffer__consume(rings);
		if (n < 0)
			break;
		if (read_detections)
			last_found = last_read;
	}
	return NULL;
}

static void print_stats(struct sockeye_bpf *skel)
{
	int cpus = libbpf_num_possible_cpus();
	struct hook_counter per_cpu[cpus > 0 ? cpus : 1];
	unsigned long long emitted[SOCKEYE_HOOK_COUNT] = { 0 }, lost[SOCKEYE_HOOK_COUNT] = { 0 };

	for (__u32 hook = 0; hook < SOCKEYE_HOOK_COUNT; hook++) {
		if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.hook_counters), &hook, per_cpu))
			continue;
		for (int c = 0; c < cpus; c++) {
			emitted[hook] += per_cpu[c].emitted;
			lost[hook] += per_cpu[c].lost;
		}
	}
	printf("{\"records\":%llu,\"loadgenDups\":%llu,\"dupEmitted\":%llu,\"dupLost\":%llu,"
	       "\"execEmitted\":%llu,\"execLost\":%llu,\"latenciesNs\":[",
	       atomic_load(&records_total), atomic_load(&dups_from_loadgen), emitted[SOCKEYE_HOOK_DUP],
	       lost[SOCKEYE_HOOK_DUP], emitted[SOCKEYE_HOOK_EXEC], lost[SOCKEYE_HOOK_EXEC]);
	pthread_mutex_lock(&latency_lock);
	for (unsigned int i = 0; i < latency_count; i++)
		printf("%s%llu", i ? "," : "", latencies_ns[i]);
	latency_count = 0;
	pthread_mutex_unlock(&latency_lock);
	printf("]}\n");
	fflush(stdout);
}

/* The ia32 program is opt-in in the addon too (LoadOptions::compat_syscalls), and so is
 * enforcement (`[enforce] mode = "on"`): the yardstick is the sensor as it runs by default. */
static const char *const skipped_programs[] = {
	"handle_connect_lsm", "handle_connect_fentry", "handle_compat_exit",
	"enforce_bprm_check", "enforce_exec", "enforce_dup_exit", "enforce_dup2_exit", "enforce_dup3_exit", "enforce_fcntl_exit",
};

int main(int argc, char **argv)
{
	int read_rings = !(argc > 1 && !strcmp(argv[1], "attach-only"));
	struct sockeye_bpf *skel;
	struct ring_buffer *rings;
	pthread_t reader;
	char line[64];
	time_t started = time(NULL);

	/* tp/ programs attach through tracefs, which this machine kind boots without. */
	if (access("/sys/kernel/tracing/events", F_OK) && access("/sys/kernel/debug/tracing/events", F_OK))
		mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL);
	skel = sockeye_bpf__open();
	if (!skel) {
		fprintf(stderr, "sockeye-c-consumer: open: %s\n", strerror(errno));
		return 1;
	}
	for (size_t i = 0; i < sizeof(skipped_programs) / sizeof(skipped_programs[0]); i++)
		bpf_program__set_autoload(bpf_object__find_program_by_name(skel->obj, skipped_programs[i]), false);
	skel->rodata->wakeup_interval_ns = WAKEUP_INTERVAL_NS;
	if (sockeye_bpf__load(skel) || sockeye_bpf__attach(skel)) {
		fprintf(stderr, "sockeye-c-consumer: load/attach: %s\n", strerror(errno));
		sockeye_bpf__destroy(skel);
		return 1;
	}
	rings = ring_buffer__new(bpf_map__fd(skel->maps.detection_events), on_detection_record, NULL, NULL);
	if (!rings || ring_buffer__add(rings, bpf_map__fd(skel->maps.process_events), on_record, NULL)) {
		fprintf(stderr, "sockeye-c-consumer: ring buffers: %s\n", strerror(errno));
		sockeye_bpf__destroy(skel);
		return 1;
	}
	if (read_rings) {
		/* Scheduled like the addon's reader thread (native/ring_reader.cc): SCHED_RR 1. */
		struct sched_param param = { .sched_priority = 1 };

		pthread_create(&reader, NULL, drain, rings);
		pthread_setschedparam(reader, SCHED_RR, &param);
	}
	printf("{\"ready\":true}\n");
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin) && time(NULL) - started < MAX_SECONDS) {
		if (!strncmp(line, "quit", 4))
			break;
		if (!strncmp(line, "stats", 5))
			print_stats(skel);
	}
	atomic_store(&stopping, 1);
	if (read_rings)
		pthread_join(reader, NULL);
	ring_buffer__free(rings);
	sockeye_bpf__destroy(skel);
	return 0;
}
