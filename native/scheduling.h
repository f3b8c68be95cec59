// Real-time scheduling for the threads between a kernel event and its finding.
//
// The reader thread runs SCHED_RR 1 for good (ring_reader.cc). The event loop thread (where
// rules run and findings are written) may too, but only while it is cheap: under a flood it
// can be busy all the time, and a real-time thread that is always runnable would come before
// every ordinary task on its CPU. So EventLoopPriority puts it under SCHED_RR 1 while it uses
// little CPU, takes it back to normal scheduling as soon as it is busy, and returns it to
// real time once it has been calm for a while. The reader thread runs the checks, so they
// happen even while the event loop itself is too busy to run a timer.
#pragma once

#include <sys/types.h>
#include <time.h>

#include <atomic>
#include <cstdint>
#include <string>

namespace sockeye {

// "SCHED_RR 1" or "normal (SCHED_RR refused: <why>)" for a sched_setscheduler result.
std::string describe_realtime_result(int err);

class EventLoopPriority {
 public:
  // On the event loop thread: puts that thread under SCHED_RR 1 (with SCHED_RESET_ON_FORK, so
  // processes it spawns run normally). A thread that is not plain SCHED_OTHER (an operator's
  // chrt or SCHED_BATCH), or that another sensor already manages, is left as it is.
  EventLoopPriority();
  ~EventLoopPriority() { release(); }
  EventLoopPriority(const EventLoopPriority&) = delete;
  EventLoopPriority& operator=(const EventLoopPriority&) = delete;
  // Back to the thread's scheduling as it was before; call on the event loop thread, after
  // the last tick(). Idempotent.
  void release();
  // From the ticking thread when it stops ticking for good before release() (its loop
  // failed): back to the original scheduling now, since nothing will watch it any more.
  void give_up();

  // From another thread, often (the reader's loop): every kCheckInterval, the event loop's CPU
  // share since the last check decides its scheduling.
  void tick(uint64_t now_ns);

  // "SCHED_RR 1 while calm", "normal: busy (<n> times)", "normal (SCHED_RR refused: …)".
  std::string describe() const;
  uint32_t demotions() const { return demotions_.load(); }

  // Over this share of one CPU in a check interval: back to normal scheduling.
  static constexpr double kBusyShare = 0.5;
  // Under this share for kCalmNs in a row: real time again.
  static constexpr double kCalmShare = 0.2;
  static constexpr uint64_t kCheckIntervalNs = 250'000'000;
  static constexpr uint64_t kCalmNs = 5'000'000'000;

 private:
  uint64_t thread_cpu_ns() const;
  bool set_realtime(bool on);
  void unregister();

  pid_t tid_;
  clockid_t cpu_clock_{};
  int original_policy_ = 0;  // sched_getscheduler's, SCHED_RESET_ON_FORK included
  int original_priority_ = 0;
  bool managed_ = false;     // this object registered tid_ and changed its scheduling
  std::string refused_;      // written on the event loop thread only
  std::atomic<bool> given_up_{false};
  std::atomic<bool> realtime_{false};
  std::atomic<uint32_t> demotions_{0};
  uint64_t last_check_ns_ = 0, last_cpu_ns_ = 0, calm_since_ns_ = 0;
};

}  // namespace sockeye
