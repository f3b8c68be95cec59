#include "ring_reader.h"

#include <bpf/libbpf.h>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace sockeye {
namespace {
// How long one poll may sleep: bounds how late stop() returns, not event latency (a record
// wakes the poll at once).
constexpr int kPollTimeoutMs = 50;
constexpr size_t kInitialBatchBytes = 64 * 1024;
}  // namespace

RingReader::RingReader(int detection_ring_fd, int process_ring_fd, Deliver deliver)
    : deliver_(std::move(deliver)), batch_(std::make_unique<Batch>()) {
  batch_->bytes.reserve(kInitialBatchBytes);
  // Both rings share one epoll set: one wakeup drains whatever either holds.
  rings_ = ring_buffer__new(detection_ring_fd, &RingReader::on_record, this, nullptr);
  if (!rings_) throw std::runtime_error(std::string("ring_buffer__new: ") + strerror(errno));
  if (ring_buffer__add(rings_, process_ring_fd, &RingReader::on_record, this) != 0) {
    ring_buffer__free(rings_);
    throw std::runtime_error(std::string("ring_buffer__add: ") + strerror(errno));
  }
  thread_ = std::thread([this] { run(); });
}

RingReader::~RingReader() {
  stop();
  ring_buffer__free(rings_);
}

void RingReader::stop() {
  stopping_.store(true);
  if (thread_.joinable()) thread_.join();
}

int RingReader::on_record(void* ctx, void* data, size_t size) {
  auto* self = static_cast<RingReader*>(ctx);
  auto& bytes = self->batch_->bytes;
  size_t at = bytes.size();
  bytes.resize(at + ((size + 7) & ~size_t(7)));
  memcpy(bytes.data() + at, data, size);
  self->batch_->records++;
  return 0;
}

void RingReader::run() {
  while (!stopping_.load()) {
    int n = ring_buffer__poll(rings_, kPollTimeoutMs);
    if (n < 0 && n != -EINTR) break;
    if (batch_->records == 0) continue;
    deliver_(std::move(batch_), false);
    batch_ = std::make_unique<Batch>();
    batch_->bytes.reserve(kInitialBatchBytes);
  }
  // Whatever is still in the rings at stop belongs to the last batch: nothing is left behind.
  ring_buffer__consume(rings_);
  if (batch_->records) deliver_(std::move(batch_), true);
  batch_ = std::make_unique<Batch>();
}

}  // namespace sockeye
