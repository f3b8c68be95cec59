// Drains the ring buffers (detections, process records, relay records) on a thread of its own and hands records over in batches:
// one batch per wakeup, never one call per record (docs/design.md §2).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

struct ring_buffer;

namespace sockeye {

class EventLoopPriority;

// Records back to back, each padded to 8 bytes; every record starts with event_header.
// CLOCK_MONOTONIC in ns (the clock of the kernel's wakeup bookkeeping and of batch stamps).
uint64_t monotonic_ns();

struct Batch {
  std::vector<uint8_t> bytes;
  uint32_t records = 0;
  // CLOCK_MONOTONIC when the batch was handed to the event loop's queue: JavaScript is told
  // how long it waited there, which is the event loop's lag as the batch felt it.
  uint64_t queued_ns = 0;
};

class RingReader {
 public:
  // `deliver` runs on the reader thread and takes ownership; it may block, which is how a
  // slow consumer turns into kernel-counted losses instead of unbounded memory. `closing`
  // marks the last batch, delivered while the main thread waits in stop(): it must not block.
  // While it waits it calls `waiting` now and then: the reader's periodic duties (the event
  // loop's scheduling checks) must go on exactly when JavaScript is stuck.
  using Deliver = std::function<void(std::unique_ptr<Batch>, bool closing, const std::function<void()>& waiting)>;

  // `wakeup_interval_us`: the kernel side's wakeup interval (LoadOptions); the reader keeps
  // polling past it after each record so that no record submitted without a wakeup waits.
  // `realtime`: run the thread under SCHED_RR at the lowest real-time priority (see
  // scheduling()). `event_loop_realtime`: the calling thread (the event loop) runs SCHED_RR 1
  // while it is calm, normal while busy (scheduling.h); the reader runs the checks.
  // Throws std::runtime_error when the ring buffers cannot be set up.
  RingReader(int detection_ring_fd, int process_ring_fd, int relay_ring_fd, uint32_t wakeup_interval_us, bool realtime,
             bool event_loop_realtime, Deliver deliver);
  ~RingReader();
  RingReader(const RingReader&) = delete;
  RingReader& operator=(const RingReader&) = delete;

  // Stops polling and joins the thread; the current batch is delivered first.
  void stop();

  // How the thread is scheduled: "SCHED_RR 1", "normal", or "normal (SCHED_RR refused: why)".
  const std::string& scheduling() const { return scheduling_; }
  // How the event loop thread is: "normal" when not managed, else EventLoopPriority::describe().
  std::string event_loop_scheduling() const;

 private:
  static int on_record(void* ctx, void* data, size_t size);
  static int on_detection_record(void* ctx, void* data, size_t size);
  void run();

  ring_buffer* rings_ = nullptr;
  uint32_t wakeup_interval_us_;
  Deliver deliver_;
  std::unique_ptr<Batch> batch_;
  bool read_detections_ = false;  // the current read of the rings found a detection record
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::string scheduling_ = "normal";
  std::unique_ptr<EventLoopPriority> event_loop_;
};

}  // namespace sockeye
