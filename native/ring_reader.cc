#include "ring_reader.h"

#include <bpf/libbpf.h>

#include "scheduling.h"
#include <pthread.h>
#include <sched.h>
#include <time.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace sockeye {
namespace {
// How long one poll may sleep. A detection wakes the poll at once (and every read takes both
// rings, so its process's exec comes along); process records below the ring's fill level
// wake nobody (process_submit_flags in bpf/process.bpf.c), so this is how late they can reach
// JavaScript: an exec-only rule such as 259be2d8 alerts up to this late. It also bounds how
// late stop() returns. 100 ms: each poll that finds exec records is a batch, a wakeup of the
// event loop and of V8's helpers, and on these machines a wakeup alone costs 70 µs of CPU (a
// C nanosleep loop) to 130-190 µs (Node's timer), with the batch's code and data cold again:
// the daemon's CPU per exec at 500 fork+execs/s was 31-37 µs at 50 ms, 20-23 µs at 100 ms
// (bench/README.md). Past 100 ms the gain flattens while exec-only rules wait longer.
constexpr int kPollTimeoutMs = 100;
constexpr size_t kInitialBatchBytes = 64 * 1024;
// libbpf's poll and consume keep reading for as long as producers keep writing (1.5's
// ringbuf_process_ring stops only after INT_MAX records; consume_n bounds records, not bytes,
// and poll has no bound at all): under a flood one call would never return, the batch would
// grow without bound and JavaScript would see nothing. A batch this big ends the call; the
// rest is read right after it is handed over.
constexpr size_t kMaxBatchBytes = 4 * 1024 * 1024;
// What on_record returns to stop libbpf (the record itself is already copied and consumed).
constexpr int kBatchFull = -EFBIG;
// At stop, the rings are read until empty, but no more than this many full batches: a flood
// that outruns the reader must not keep close() from returning.
constexpr int kMaxBatchesAtStop = 16;
// Margin past the kernel's wakeup interval before the reader trusts wakeups again: covers the
// moment between a record's wakeup decision and its commit.
constexpr uint64_t kQuietSlackNs = 50'000;
}  // namespace

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000u + uint64_t(ts.tv_nsec);
}

RingReader::RingReader(int detection_ring_fd, int process_ring_fd, int relay_ring_fd, uint32_t wakeup_interval_us, bool realtime,
                       bool event_loop_realtime, Deliver deliver)
    : wakeup_interval_us_(wakeup_interval_us), deliver_(std::move(deliver)), batch_(std::make_unique<Batch>()) {
  batch_->bytes.reserve(kInitialBatchBytes);
  // The rings share one epoll set: one wakeup drains whatever any holds.
  rings_ = ring_buffer__new(detection_ring_fd, &RingReader::on_detection_record, this, nullptr);
  if (!rings_) throw std::runtime_error(std::string("ring_buffer__new: ") + strerror(errno));
  if (ring_buffer__add(rings_, process_ring_fd, &RingReader::on_record, this) != 0 ||
      ring_buffer__add(rings_, relay_ring_fd, &RingReader::on_record, this) != 0) {
    ring_buffer__free(rings_);
    throw std::runtime_error(std::string("ring_buffer__add: ") + strerror(errno));
  }
  // Here, on the event loop thread itself, before the reader that ticks it exists.
  if (event_loop_realtime) event_loop_ = std::make_unique<EventLoopPriority>();
  try {
    thread_ = std::thread([this] { run(); });
  } catch (...) {
    // No reader (EAGAIN: a pids limit): nothing would tick the event loop; ~EventLoopPriority
    // restores it as the unique_ptr goes.
    ring_buffer__free(rings_);
    throw;
  }
  // Named, so that top -H, ps -L and /proc/PID/task show which thread reads the rings.
  pthread_setname_np(thread_.native_handle(), "sockeye-reader");
  // Real-time, lowest priority: the reader gets a CPU as soon as it wakes, even while the
  // monitored host keeps every CPU busy. Without it, a 125 µs nap of the busy reader took up
  // to 6 ms whenever the host was busy, long enough for a stream of detections to overflow the
  // ring. Its work per wakeup is bounded (one batch, at most
  // kMaxBatchBytes), it sleeps between reads and while JavaScript's queue is full, so it
  // cannot spin; and the kernel's RT throttling (unless sched_rt_runtime_us is -1) leaves
  // ordinary tasks at least 5% of each CPU.
  if (realtime) {
    sched_param param{};
    param.sched_priority = 1;
    scheduling_ = describe_realtime_result(pthread_setschedparam(thread_.native_handle(), SCHED_RR, &param));
  }
}

std::string RingReader::event_loop_scheduling() const {
  return event_loop_ ? event_loop_->describe() : "normal";
}

RingReader::~RingReader() {
  stop();
  ring_buffer__free(rings_);
}

void RingReader::stop() {
  stopping_.store(true);
  if (thread_.joinable()) thread_.join();
  // The event loop is the host application's thread: never leave it real-time after close.
  if (event_loop_) event_loop_->release();
}

int RingReader::on_record(void* ctx, void* data, size_t size) {
  auto* self = static_cast<RingReader*>(ctx);
  auto& bytes = self->batch_->bytes;
  size_t at = bytes.size();
  bytes.resize(at + ((size + 7) & ~size_t(7)));
  memcpy(bytes.data() + at, data, size);
  self->batch_->records++;
  return bytes.size() >= kMaxBatchBytes ? kBatchFull : 0;
}

int RingReader::on_detection_record(void* ctx, void* data, size_t size) {
  static_cast<RingReader*>(ctx)->read_detections_ = true;
  return on_record(ctx, data, size);
}

// Two states. Idle: sleep in epoll until a record wakes us (or the poll times out). Busy (a
// detection record was found less than one wakeup interval ago): the kernel may be submitting
// detections without waking us (see submit_flags in bpf/common.bpf.h), so sleep half an
// interval and read whatever is there; only after a full interval (plus slack) with no new
// detection is epoll trusted again. A busy stream thus costs two reader wakeups per interval
// instead of one per record, and a detection waits at most about one interval. Process records
// do not make the reader busy: they are meant to wait for the next wakeup or poll timeout, and
// a steady exec stream kept the reader busy, handing JavaScript a batch every two execs.
void RingReader::run() {
  const uint64_t interval_ns = uint64_t(wakeup_interval_us_) * 1000;
  const timespec busy_nap{0, long(interval_ns / 2)};
  // Times taken just before a read of the rings: the last read, and the last that found any.
  uint64_t last_read_ns = 0, last_found_ns = 0;
  const std::function<void()> tick_while_waiting = [this] {
    if (event_loop_) event_loop_->tick(monotonic_ns());
  };
  while (!stopping_.load()) {
    // Reset before the poll: ring_buffer__poll itself reads the ring that woke it, and a
    // detection it read must make the reader busy too. Reset after it, the reader would go
    // back to epoll when the record that woke it was the only one there yet, and the next
    // records, submitted without a wakeup, would wait for the next wakeup or the poll
    // timeout: a 2 ms tail on idle detection latency.
    read_detections_ = false;
    if (interval_ns && last_read_ns - last_found_ns < interval_ns + kQuietSlackNs) {
      nanosleep(&busy_nap, nullptr);
    } else {
      int n = ring_buffer__poll(rings_, kPollTimeoutMs);
      if (n < 0 && n != -EINTR && n != kBatchFull) break;
    }
    last_read_ns = monotonic_ns();
    if (event_loop_) event_loop_->tick(last_read_ns);
    // Every ring, not only the one whose wakeup fired: the other may hold records that were
    // submitted without one, and a batch must hold every ring's records up to now so that a
    // process's exec is never a batch behind its dups. (Only a batch cut at kMaxBatchBytes,
    // under a flood, can leave the process ring for the next batch, read at once after it.)
    int consumed = ring_buffer__consume(rings_);
    if (consumed < 0 && consumed != kBatchFull) break;
    if (read_detections_) last_found_ns = last_read_ns;
    if (batch_->records == 0) continue;
    deliver_(std::move(batch_), false, tick_while_waiting);
    batch_ = std::make_unique<Batch>();
    batch_->bytes.reserve(kInitialBatchBytes);
  }
  // Left the loop on a read error, not a stop: nothing will watch the event loop from now on.
  if (!stopping_.load() && event_loop_) event_loop_->give_up();
  // Whatever is still in the rings at stop belongs to the last batches: nothing is left behind.
  for (int i = 0; i < kMaxBatchesAtStop; i++) {
    int consumed = ring_buffer__consume(rings_);
    if (batch_->records) deliver_(std::move(batch_), true, tick_while_waiting);
    batch_ = std::make_unique<Batch>();
    if (consumed != kBatchFull) break;
  }
}

}  // namespace sockeye
