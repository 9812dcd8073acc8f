#include "policies/bulkhead/bulkhead.h"

#include <utility>

namespace bulwark::policies {

PartitionedConcurrencyLimit::Permit::Permit(Permit&& other) noexcept
    : owner_(other.owner_), total_(std::move(other.total_)), entry_(other.entry_) {
  other.owner_ = nullptr;
  other.entry_ = nullptr;
}

PartitionedConcurrencyLimit::Permit& PartitionedConcurrencyLimit::Permit::operator=(
    Permit&& other) noexcept {
  if (this != &other) {
    release();
    owner_ = other.owner_;
    total_ = std::move(other.total_);
    entry_ = other.entry_;
    other.owner_ = nullptr;
    other.entry_ = nullptr;
  }
  return *this;
}

void PartitionedConcurrencyLimit::Permit::release() {
  if (owner_ == nullptr) {
    return;
  }
  if (entry_ != nullptr) {
    owner_->releasePartition(entry_);
    entry_ = nullptr;
  }
  total_.release();
  owner_ = nullptr;
}

PartitionedConcurrencyLimit::Result PartitionedConcurrencyLimit::tryAcquire(
    std::string_view partition) {
  auto total = total_.tryAcquire();
  if (!total) {
    return {std::nullopt, Rejection::Full};
  }
  if (max_per_partition_ == 0) {
    return {Permit(this, std::move(*total), nullptr), Rejection::Full};
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = partitions_.find(std::string(partition));
  if (it == partitions_.end()) {
    it = partitions_.emplace(std::string(partition), 0).first;
  }
  if (it->second >= max_per_partition_) {
    // `total` is released when it goes out of scope, after the lock: harmless either way.
    return {std::nullopt, Rejection::PartitionFull};
  }
  ++it->second;
  return {Permit(this, std::move(*total), &*it), Rejection::Full};
}

void PartitionedConcurrencyLimit::releasePartition(std::pair<const std::string, uint32_t>* entry) {
  std::lock_guard<std::mutex> lock(mu_);
  if (--entry->second == 0) {
    partitions_.erase(entry->first);
  }
}

uint32_t PartitionedConcurrencyLimit::activeIn(std::string_view partition) const {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = partitions_.find(std::string(partition));
  return it == partitions_.end() ? 0 : it->second;
}

size_t PartitionedConcurrencyLimit::partitionCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return partitions_.size();
}

Bulkhead::Bulkhead(const Options& options)
    : options_(options),
      limit_(options.max_concurrent_requests, options.max_concurrent_per_partition),
      queue_(options.max_queued_requests) {}

Bulkhead::Admission Bulkhead::tryAdmit(std::string_view partition, MonotonicTime now) {
  Admission admission;
  auto result = limit_.tryAcquire(partition);
  if (result.permit) {
    admission.decision = Decision::Admitted;
    admission.permit = std::move(result.permit);
    return admission;
  }
  if (result.rejection == PartitionedConcurrencyLimit::Rejection::PartitionFull) {
    admission.decision = Decision::RejectedPartition;
    return admission;
  }
  admission.queue_slot = queue_.tryAcquire();
  if (!admission.queue_slot) {
    admission.decision = Decision::RejectedFull;
    return admission;
  }
  admission.decision = Decision::Queued;
  if (options_.queue_timeout > Duration::zero()) {
    admission.queue_deadline = saturatingAdd(now, options_.queue_timeout);
  }
  return admission;
}

std::string_view decisionLabel(Bulkhead::Decision decision) {
  switch (decision) {
    case Bulkhead::Decision::Admitted: return "admitted";
    case Bulkhead::Decision::Queued: return "queued";
    case Bulkhead::Decision::RejectedFull: return "full";
    case Bulkhead::Decision::RejectedPartition: return "partition_full";
  }
  return "full";
}

}  // namespace bulwark::policies
