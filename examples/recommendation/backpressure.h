#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

namespace bulwark::examples::recommendation {

/**
 * The seed's backpressure (RECSYS_BACKPRESSURE_MAX_INFLIGHT / _MAX_QUEUE): at most max_inflight
 * requests run; up to max_queue more wait in FIFO order; anything beyond is rejected (503).
 * Thread: owning loop thread.
 */
template <typename T>
class Backpressure {
public:
  enum class Decision { Run, Queued, Reject };

  Backpressure(size_t max_inflight, size_t max_queue)
      : max_inflight_(max_inflight), max_queue_(max_queue) {}

  /** Run: the caller runs `item` now (it counts as in flight). Queued: `item` was moved in. */
  Decision offer(T& item) {
    if (inflight_ < max_inflight_) {
      ++inflight_;
      return Decision::Run;
    }
    if (queue_.size() < max_queue_) {
      queue_.push_back(std::move(item));
      return Decision::Queued;
    }
    return Decision::Reject;
  }

  /** One in-flight item finished; returns the next queued item, which now counts as in flight. */
  std::optional<T> finish() {
    if (queue_.empty()) {
      if (inflight_ > 0) {
        --inflight_;
      }
      return std::nullopt;
    }
    T next = std::move(queue_.front());
    queue_.pop_front();
    return next;
  }

  size_t inflight() const { return inflight_; }
  size_t queued() const { return queue_.size(); }

private:
  size_t max_inflight_;
  size_t max_queue_;
  size_t inflight_ = 0;
  std::deque<T> queue_;
};

/**
 * Per-tenant token buckets (the seed's dev "safety rate limit"): `rate` tokens per second up to
 * `burst`; a request takes one token or is told how long until one is available.
 * Thread: owning loop thread.
 */
class TenantRateLimiter {
public:
  using Clock = std::chrono::steady_clock;

  /** rate <= 0 disables limiting; burst < 1 means burst = max(1, rate). */
  TenantRateLimiter(double rate, double burst)
      : rate_(rate), burst_(burst >= 1 ? burst : std::max(1.0, rate)) {}

  bool enabled() const { return rate_ > 0; }

  /** @return nullopt when admitted, else the wait until the next token. */
  std::optional<std::chrono::nanoseconds> tryAcquire(const std::string& tenant,
                                                     Clock::time_point now) {
    if (!enabled()) {
      return std::nullopt;
    }
    auto [it, inserted] = buckets_.try_emplace(tenant, Bucket{burst_, now});
    Bucket& b = it->second;
    if (!inserted) {
      const double elapsed = std::chrono::duration<double>(now - b.updated).count();
      b.tokens = std::min(burst_, b.tokens + std::max(0.0, elapsed) * rate_);
      b.updated = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return std::nullopt;
    }
    return std::chrono::nanoseconds(static_cast<int64_t>((1 - b.tokens) / rate_ * 1e9));
  }

private:
  struct Bucket {
    double tokens;
    Clock::time_point updated;
  };
  double rate_;
  double burst_;
  std::unordered_map<std::string, Bucket> buckets_;
};

/** Retry-After seconds for a wait: rounded up, at least 1. */
inline long retryAfterSeconds(std::chrono::nanoseconds wait) {
  const long s = static_cast<long>((wait.count() + 999'999'999) / 1'000'000'000);
  return std::max(1L, s);
}

}  // namespace bulwark::examples::recommendation
