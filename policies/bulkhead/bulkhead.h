#pragma once

// Route bulkhead decisions: a total concurrency limit, optional
// per-partition (tenant) limits, and the admit / queue / reject rule. The wait queue itself is
// a per-worker FIFO in the bulkhead filter; this class only counts its slots so that
// maxQueuedRequests holds across all workers.

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "policies/bulkhead/concurrency_limit.h"
#include "policies/time.h"

namespace bulwark::policies {

/**
 * Concurrency limit with per-partition sub-limits, so that one noisy partition (tenant) can
 * hold at most max_per_partition of the max_total slots and the others keep theirs.
 * The empty partition name (request without the partition header) is a partition of its own,
 * so omitting the header does not escape the limit.
 * Both bounds are exact: the total is a CAS semaphore; the per-partition counts are checked and
 * incremented under a mutex (only taken when partitions are enabled).
 * Memory: one map entry per partition with at least one held permit, so at most max_total.
 * Thread: any. The limit must outlive every Permit.
 */
class PartitionedConcurrencyLimit {
public:
  /** One held slot (and its partition's slot). Move-only; released on destruction. */
  class Permit {
  public:
    Permit(Permit&& other) noexcept;
    Permit& operator=(Permit&& other) noexcept;
    Permit(const Permit&) = delete;
    Permit& operator=(const Permit&) = delete;
    ~Permit() { release(); }

    /** Releases both slots early; idempotent. */
    void release();
    bool held() const { return owner_ != nullptr; }

  private:
    friend class PartitionedConcurrencyLimit;
    Permit(PartitionedConcurrencyLimit* owner, ConcurrencyLimit::Permit total,
           std::pair<const std::string, uint32_t>* entry)
        : owner_(owner), total_(std::move(total)), entry_(entry) {}

    PartitionedConcurrencyLimit* owner_;
    ConcurrencyLimit::Permit total_;
    // Node of owner_->partitions_; unordered_map nodes are stable across rehashing and the node
    // is erased only when its count reaches zero, i.e. by its last permit.
    std::pair<const std::string, uint32_t>* entry_;
  };

  enum class Rejection : uint8_t { Full, PartitionFull };

  struct Result {
    std::optional<Permit> permit;
    Rejection rejection = Rejection::Full;  // meaningful only without a permit
  };

  /**
   * @param max_total slots for the whole route (maxConcurrentRequests).
   * @param max_per_partition slots per partition; 0 disables partitions.
   */
  PartitionedConcurrencyLimit(uint32_t max_total, uint32_t max_per_partition)
      : total_(max_total), max_per_partition_(max_per_partition) {}

  /** Takes a slot for `partition` (ignored when partitions are disabled). Never blocks. */
  Result tryAcquire(std::string_view partition);

  uint32_t active() const { return total_.active(); }
  uint32_t maxTotal() const { return total_.max(); }
  uint32_t maxPerPartition() const { return max_per_partition_; }
  /** @return slots held by `partition`. Thread: any (takes the mutex). */
  uint32_t activeIn(std::string_view partition) const;
  /** @return partitions currently holding a slot (bounded by maxTotal()). */
  size_t partitionCount() const;

private:
  void releasePartition(std::pair<const std::string, uint32_t>* entry);

  ConcurrencyLimit total_;
  const uint32_t max_per_partition_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, uint32_t> partitions_;  // guarded by mu_
};

/**
 * Bulkhead admission: run now, wait in the queue, or reject.
 *   - a concurrency slot is free (total and partition)   -> Admitted (holds a permit)
 *   - the partition is at its own limit                  -> RejectedPartition (never queued, so
 *                                                            a noisy tenant cannot fill the queue)
 *   - the route is full and a queue slot is free          -> Queued (holds a queue slot until
 *                                                            woken or queue_deadline passes)
 *   - otherwise                                           -> RejectedFull
 * A queued request retries tryAcquire() when the filter wakes it (a permit was released) and is
 * rejected (reason queue_timeout) at queue_deadline.
 * Thread: any (the queue slots are a CAS semaphore; see PartitionedConcurrencyLimit).
 */
class Bulkhead {
public:
  struct Options {
    uint32_t max_concurrent_requests = 1024;
    uint32_t max_queued_requests = 0;
    Duration queue_timeout{0};  // 0 with max_queued_requests > 0: wait until the request deadline
    uint32_t max_concurrent_per_partition = 0;  // 0 = no partitions
  };

  enum class Decision : uint8_t { Admitted, Queued, RejectedFull, RejectedPartition };

  struct Admission {
    Decision decision = Decision::RejectedFull;
    std::optional<PartitionedConcurrencyLimit::Permit> permit;  // when Admitted
    std::optional<ConcurrencyLimit::Permit> queue_slot;         // when Queued
    std::optional<MonotonicTime> queue_deadline;                // when Queued with a timeout
  };

  explicit Bulkhead(const Options& options);

  /** First decision for a new request. */
  Admission tryAdmit(std::string_view partition, MonotonicTime now);

  /** A queued request's retry when woken; on success the caller drops its queue slot. */
  std::optional<PartitionedConcurrencyLimit::Permit> tryAcquire(std::string_view partition) {
    return limit_.tryAcquire(partition).permit;
  }

  uint32_t active() const { return limit_.active(); }
  uint32_t queued() const { return queue_.active(); }
  const Options& options() const { return options_; }

private:
  Options options_;
  PartitionedConcurrencyLimit limit_;
  ConcurrencyLimit queue_;
};

/** @return a stable metric label: "admitted", "queued", "full", "partition_full". */
std::string_view decisionLabel(Bulkhead::Decision decision);

}  // namespace bulwark::policies
