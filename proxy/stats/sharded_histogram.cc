#include "proxy/stats/sharded_histogram.h"

#include <algorithm>
#include <bit>
#include <limits>
#include <thread>
#include <utility>

namespace bulwark::stats {
namespace {

constexpr size_t kCacheLine = 64;
constexpr size_t kCellsPerLine = kCacheLine / sizeof(std::atomic<uint64_t>);

/** The calling thread's slot: threads are numbered in the order they first ask. */
size_t threadSlot() {
  static std::atomic<size_t> next_slot{0};
  thread_local const size_t slot = next_slot.fetch_add(1, std::memory_order_relaxed);
  return slot;
}

}  // namespace

size_t defaultHistogramShards() {
  return std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 16);
}

ShardedHistogram::ShardedHistogram(std::vector<double> bounds, size_t shards)
    : bounds_(std::move(bounds)),
      shards_(std::max<size_t>(shards, 1)),
      stride_((bounds_.size() + 2 + kCellsPerLine - 1) / kCellsPerLine * kCellsPerLine),
      storage_(std::make_unique<std::atomic<uint64_t>[]>(shards_ * stride_ + kCellsPerLine - 1)) {
  // Value-initialised (zero) cells; start at the first cache-line boundary inside them.
  const auto address = reinterpret_cast<uintptr_t>(storage_.get());
  const uintptr_t misalignment = address % kCacheLine;
  cells_ = storage_.get() +
           (misalignment == 0 ? 0 : (kCacheLine - misalignment) / sizeof(std::atomic<uint64_t>));
}

void ShardedHistogram::observe(double value) {
  // Few buckets: a forward scan is as quick as a binary search and finds small values first.
  size_t bucket = 0;
  while (bucket < bounds_.size() && bounds_[bucket] < value) {
    ++bucket;
  }
  std::atomic<uint64_t>* cells = shard(threadSlot() % shards_);
  cells[bucket].fetch_add(1, std::memory_order_relaxed);
  std::atomic<uint64_t>& sum = cells[bounds_.size() + 1];
  uint64_t seen = sum.load(std::memory_order_relaxed);
  while (!sum.compare_exchange_weak(seen,
                                    std::bit_cast<uint64_t>(std::bit_cast<double>(seen) + value),
                                    std::memory_order_relaxed)) {
  }
}

prometheus::ClientMetric ShardedHistogram::collect() const {
  std::vector<uint64_t> counts(bounds_.size() + 1, 0);
  double sum = 0;
  for (size_t s = 0; s < shards_; ++s) {
    const std::atomic<uint64_t>* cells = shard(s);
    for (size_t b = 0; b < counts.size(); ++b) {
      counts[b] += cells[b].load(std::memory_order_relaxed);
    }
    sum += std::bit_cast<double>(cells[counts.size()].load(std::memory_order_relaxed));
  }
  prometheus::ClientMetric metric;
  metric.histogram.bucket.reserve(counts.size());
  uint64_t cumulative = 0;
  for (size_t b = 0; b < counts.size(); ++b) {
    cumulative += counts[b];
    metric.histogram.bucket.push_back(
        {cumulative, b < bounds_.size() ? bounds_[b] : std::numeric_limits<double>::infinity()});
  }
  // The count is the buckets' total, so it always equals the +Inf bucket.
  metric.histogram.sample_count = cumulative;
  metric.histogram.sample_sum = sum;
  return metric;
}

ShardedHistogramFamily::ShardedHistogramFamily(std::string name, std::string help, size_t shards)
    : name_(std::move(name)), help_(std::move(help)), shards_(shards) {}

ShardedHistogram& ShardedHistogramFamily::add(const prometheus::Labels& labels,
                                              const std::vector<double>& bounds) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& slot = histograms_[labels];
  if (!slot) {
    slot = std::make_unique<ShardedHistogram>(bounds, shards_);
  }
  return *slot;
}

prometheus::MetricFamily ShardedHistogramFamily::collect() const {
  prometheus::MetricFamily family;
  family.name = name_;
  family.help = help_;
  family.type = prometheus::MetricType::Histogram;
  std::lock_guard<std::mutex> lock(mutex_);
  family.metric.reserve(histograms_.size());
  for (const auto& [labels, histogram] : histograms_) {
    prometheus::ClientMetric metric = histogram->collect();
    for (const auto& [name, value] : labels) {
      metric.label.push_back({name, value});
    }
    family.metric.push_back(std::move(metric));
  }
  return family;
}

}  // namespace bulwark::stats
