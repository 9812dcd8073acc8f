#pragma once

// Histograms for the request path. prometheus-cpp's Histogram takes a mutex on every observation
// and keeps every count on one set of cache lines, shared by all workers that serve the route;
// these keep one set of counts per thread slot (a worker's own lines) and add them up only when
// /metrics is scraped.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <prometheus/family.h>
#include <prometheus/metric_family.h>

namespace bulwark::stats {

/**
 * Bucket counts and a sum, in `shards` copies: an observation goes to the copy of the calling
 * thread's slot (threads are numbered in the order they first observe anything), so workers do
 * not write to each other's cache lines; collect() adds the copies up. Threads beyond `shards`
 * share copies, which stays correct (every update is atomic), only slower.
 * Thread: any.
 */
class ShardedHistogram {
public:
  /** `bounds`: the buckets' upper bounds, ascending (+Inf is implicit). */
  ShardedHistogram(std::vector<double> bounds, size_t shards);

  /** Counts `value` in the first bucket whose upper bound is >= it (Prometheus's `le`). */
  void observe(double value);

  /** The histogram as prometheus-cpp's serializer takes it, labels left to the caller. */
  prometheus::ClientMetric collect() const;

private:
  std::atomic<uint64_t>* shard(size_t index) const { return cells_ + index * stride_; }

  std::vector<double> bounds_;
  size_t shards_;
  // Cells per shard: one count per bucket (bounds + the +Inf one), then the sum's bits, rounded
  // up to whole cache lines so two shards never share one.
  size_t stride_;
  std::unique_ptr<std::atomic<uint64_t>[]> storage_;
  std::atomic<uint64_t>* cells_;  // storage_ aligned to a cache line
};

/**
 * One metric name's ShardedHistograms by label set, exported as one histogram family.
 * Thread: any (add and collect lock; observations do not).
 */
class ShardedHistogramFamily {
public:
  ShardedHistogramFamily(std::string name, std::string help, size_t shards);

  /**
   * The histogram with these labels, made with `bounds` the first time; the same one for the
   * same labels afterwards (it lives as long as the family).
   */
  ShardedHistogram& add(const prometheus::Labels& labels, const std::vector<double>& bounds);

  prometheus::MetricFamily collect() const;

private:
  std::string name_;
  std::string help_;
  size_t shards_;
  mutable std::mutex mutex_;
  std::map<prometheus::Labels, std::unique_ptr<ShardedHistogram>> histograms_;
};

/** How many copies of its counts a histogram keeps: one per core, at most 16. */
size_t defaultHistogramShards();

}  // namespace bulwark::stats
