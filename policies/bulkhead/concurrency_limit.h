#pragma once

// Exact concurrency limits: a CAS semaphore that is never exceeded, as HAProxy's
// assign_server_and_queue and unlike Envoy's ResourceManagerImpl (which may overshoot).
// Used for upstream thresholds (maxRequests, maxPendingRequests,
// maxRetries), route bulkheads and the concurrent retry budget.

#include <atomic>
#include <cstdint>
#include <optional>

namespace bulwark::policies {

/**
 * A counting semaphore without waiting: tryAcquire() either takes a slot now or fails.
 * Thread: any (atomics). The limit must outlive every Permit it hands out (owners keep it in a
 * shared_ptr captured by whatever holds permits).
 */
class ConcurrencyLimit {
public:
  /** One held slot; released when destroyed or on release(). Move-only. */
  class Permit {
  public:
    Permit(Permit&& other) noexcept : limit_(other.limit_) { other.limit_ = nullptr; }
    Permit& operator=(Permit&& other) noexcept {
      if (this != &other) {
        release();
        limit_ = other.limit_;
        other.limit_ = nullptr;
      }
      return *this;
    }
    Permit(const Permit&) = delete;
    Permit& operator=(const Permit&) = delete;
    ~Permit() { release(); }

    /** Gives the slot back early; idempotent. */
    void release() {
      if (limit_ != nullptr) {
        limit_->releaseOne();
        limit_ = nullptr;
      }
    }

    /** @return true while the slot is held. */
    bool held() const { return limit_ != nullptr; }

  private:
    friend class ConcurrencyLimit;
    explicit Permit(ConcurrencyLimit* limit) : limit_(limit) {}
    ConcurrencyLimit* limit_;
  };

  /** @param max slots; 0 means every tryAcquire() fails. */
  explicit ConcurrencyLimit(uint32_t max) : max_(max) {}

  ConcurrencyLimit(const ConcurrencyLimit&) = delete;
  ConcurrencyLimit& operator=(const ConcurrencyLimit&) = delete;

  /** @return a permit when fewer than max() slots are held, else nullopt. Never blocks. */
  std::optional<Permit> tryAcquire() {
    return tryAcquireUpTo(max_.load(std::memory_order_relaxed));
  }

  /**
   * Like tryAcquire() with a caller-supplied bound instead of max() (used by limits whose bound
   * moves per call: the concurrent retry budget, priority admission over an adaptive limit).
   * Exact with respect to `bound`: the count after a successful call is <= bound.
   */
  std::optional<Permit> tryAcquireUpTo(uint32_t bound) {
    uint32_t current = active_.load(std::memory_order_relaxed);
    while (current < bound) {
      if (active_.compare_exchange_weak(current, current + 1, std::memory_order_acquire,
                                        std::memory_order_relaxed)) {
        return Permit(this);
      }
    }
    rejected_.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }

  /**
   * Changes the bound for later acquisitions. Lowering it does not revoke held permits, so
   * active() may stay above the new max until they are released.
   */
  void setMax(uint32_t max) { max_.store(max, std::memory_order_relaxed); }

  uint32_t max() const { return max_.load(std::memory_order_relaxed); }
  uint32_t active() const { return active_.load(std::memory_order_relaxed); }
  /** @return acquisitions refused since construction (for overflow counters). */
  uint64_t rejectedTotal() const { return rejected_.load(std::memory_order_relaxed); }

private:
  void releaseOne() { active_.fetch_sub(1, std::memory_order_release); }

  std::atomic<uint32_t> max_;
  std::atomic<uint32_t> active_{0};
  std::atomic<uint64_t> rejected_{0};
};

}  // namespace bulwark::policies
