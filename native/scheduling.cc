#include "scheduling.h"

#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>

#ifndef SCHED_RESET_ON_FORK
#define SCHED_RESET_ON_FORK 0x40000000
#endif

namespace sockeye {

std::string describe_realtime_result(int err) {
  return err == 0 ? "SCHED_RR 1" : std::string("normal (SCHED_RR refused: ") + strerror(err) + ")";
}

namespace {
// Threads some EventLoopPriority manages: two sensors on one event loop must not both change
// it (closing one would reset what the other believes).
std::mutex managed_mutex;
std::set<pid_t> managed_threads;
}  // namespace

EventLoopPriority::EventLoopPriority() : tid_(pid_t(syscall(SYS_gettid))) {
  if (pthread_getcpuclockid(pthread_self(), &cpu_clock_) != 0) {
    refused_ = "normal (its CPU clock is unreadable)";
    return;
  }
  {
    std::lock_guard<std::mutex> lock(managed_mutex);
    if (!managed_threads.insert(tid_).second) {
      refused_ = "left as it was (another sensor manages this thread)";
      return;
    }
  }
  // From here on this object holds the thread's registry entry; unregister() gives it back.
  sched_param param{};
  original_policy_ = sched_getscheduler(tid_);
  if (original_policy_ < 0 || sched_getparam(tid_, &param) != 0) {
    refused_ = std::string("normal (its scheduling is unreadable: ") + strerror(errno) + ")";
    unregister();
    return;
  }
  original_priority_ = param.sched_priority;
  if ((original_policy_ & ~SCHED_RESET_ON_FORK) != SCHED_OTHER) {
    refused_ = "left as it was (policy " + std::to_string(original_policy_ & ~SCHED_RESET_ON_FORK) + ", not SCHED_OTHER)";
    unregister();
    return;
  }
  if (!set_realtime(true)) {
    refused_ = describe_realtime_result(errno);
    unregister();
    return;
  }
  managed_ = true;
}

void EventLoopPriority::unregister() {
  std::lock_guard<std::mutex> lock(managed_mutex);
  managed_threads.erase(tid_);
}

bool EventLoopPriority::set_realtime(bool on) {
  // sched_setscheduler with a thread id changes that thread alone, from any thread. Off is
  // the thread's own policy as it was, reset-on-fork flag and all.
  sched_param param{};
  param.sched_priority = on ? 1 : original_priority_;
  if (sched_setscheduler(tid_, on ? (SCHED_RR | SCHED_RESET_ON_FORK) : original_policy_, &param) != 0) return false;
  realtime_.store(on);
  return true;
}

void EventLoopPriority::release() {
  if (!managed_) return;
  if (realtime_.load()) set_realtime(false);
  unregister();
  managed_ = false;
  refused_ = "normal (released)";
}

void EventLoopPriority::give_up() {
  given_up_.store(true);
  if (managed_ && realtime_.load()) set_realtime(false);
}

uint64_t EventLoopPriority::thread_cpu_ns() const {
  timespec ts{};
  if (clock_gettime(cpu_clock_, &ts) != 0) return last_cpu_ns_;
  return uint64_t(ts.tv_sec) * 1'000'000'000u + uint64_t(ts.tv_nsec);
}

void EventLoopPriority::tick(uint64_t now_ns) {
  if (!managed_ || given_up_.load()) return;
  if (last_check_ns_ == 0) {
    last_check_ns_ = calm_since_ns_ = now_ns;
    last_cpu_ns_ = thread_cpu_ns();
    return;
  }
  if (now_ns - last_check_ns_ < kCheckIntervalNs) return;
  uint64_t cpu = thread_cpu_ns();
  double share = double(cpu - last_cpu_ns_) / double(now_ns - last_check_ns_);
  last_check_ns_ = now_ns;
  last_cpu_ns_ = cpu;
  if (share >= kCalmShare) calm_since_ns_ = now_ns;
  if (realtime_.load()) {
    if (share > kBusyShare && set_realtime(false)) demotions_.fetch_add(1);
  } else if (now_ns - calm_since_ns_ >= kCalmNs) {
    set_realtime(true);
  }
}

std::string EventLoopPriority::describe() const {
  if (!refused_.empty()) return refused_;
  if (given_up_.load()) return "normal (the reader stopped watching it)";
  if (realtime_.load()) return "SCHED_RR 1 while calm";
  return "normal: busy (" + std::to_string(demotions_.load()) + " times so far)";
}

}  // namespace sockeye
