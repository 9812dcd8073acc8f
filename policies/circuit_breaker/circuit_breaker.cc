#include "policies/circuit_breaker/circuit_breaker.h"

#include <algorithm>

namespace bulwark::policies {

std::string_view breakerStateLabel(BreakerState state) {
  switch (state) {
    case BreakerState::Closed: return "closed";
    case BreakerState::Open: return "open";
    case BreakerState::HalfOpen: return "half_open";
  }
  return "closed";
}

CircuitBreaker::Permit& CircuitBreaker::Permit::operator=(Permit&& other) noexcept {
  if (this != &other) {
    if (breaker_ != nullptr) {
      breaker_->onAbandoned(*this);
    }
    breaker_ = other.breaker_;
    epoch_ = other.epoch_;
    probe_ = other.probe_;
    other.breaker_ = nullptr;
  }
  return *this;
}

CircuitBreaker::Permit::~Permit() {
  if (breaker_ != nullptr) {
    breaker_->onAbandoned(*this);
  }
}

CircuitBreaker::CircuitBreaker(const Options& options, TransitionCallback on_transition)
    : options_(options),
      on_transition_(std::move(on_transition)),
      window_(std::max(options.window, Duration(1)), options.buckets) {
  options_.half_open_requests = std::max<uint32_t>(1, options_.half_open_requests);
}

BreakerState CircuitBreaker::state() const {
  return stateOf(word_.load(std::memory_order_acquire));
}

Duration CircuitBreaker::remainingOpen(MonotonicTime now) const {
  if (state() != BreakerState::Open) {
    return Duration::zero();
  }
  const int64_t left = open_until_ns_.load(std::memory_order_acquire) - toNanos(now);
  return Duration(std::max<int64_t>(0, left));
}

bool CircuitBreaker::trips(const Counters& c) const {
  if (c.calls == 0) {
    return false;
  }
  const bool failure_trip = options_.failure_rate_threshold > 0 &&
                            c.failures * 100 >= options_.failure_rate_threshold * c.calls;
  const bool slow_trip = options_.slow_call_rate_threshold > 0 &&
                         c.slow * 100 >= options_.slow_call_rate_threshold * c.calls;
  return failure_trip || slow_trip;
}

CircuitBreaker::Transition CircuitBreaker::transitionLocked(BreakerState to, MonotonicTime now) {
  const uint64_t word = word_.load(std::memory_order_relaxed);
  const BreakerState from = stateOf(word);
  switch (to) {
    case BreakerState::Open:
      open_until_ns_.store(toNanos(saturatingAdd(now, options_.open_duration)),
                           std::memory_order_release);
      break;
    case BreakerState::HalfOpen:
      probes_issued_ = 0;
      probe_results_ = Counters{};
      break;
    case BreakerState::Closed:
      window_.clear();  // Resilience4j resets the metrics on every transition to CLOSED.
      break;
  }
  word_.store(((epochOf(word) + 1) << 2) | static_cast<uint64_t>(to), std::memory_order_release);
  transitions_[index(from)][index(to)].fetch_add(1, std::memory_order_relaxed);
  return {from, to};
}

void CircuitBreaker::report(const Transition& t) {
  if (on_transition_) {
    on_transition_(t.from, t.to);
  }
}

std::optional<CircuitBreaker::Permit> CircuitBreaker::tryAcquire(MonotonicTime now) {
  const uint64_t word = word_.load(std::memory_order_acquire);
  const BreakerState current = stateOf(word);
  if (current == BreakerState::Closed) {
    return Permit(this, epochOf(word), false);  // the fast path: one atomic load
  }
  if (current == BreakerState::Open &&
      toNanos(now) < open_until_ns_.load(std::memory_order_acquire)) {
    rejected_.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }

  std::optional<Transition> transition;
  std::optional<Permit> permit;
  {
    std::lock_guard<std::mutex> lock(mu_);
    uint64_t locked = word_.load(std::memory_order_relaxed);
    if (stateOf(locked) == BreakerState::Open &&
        toNanos(now) >= open_until_ns_.load(std::memory_order_relaxed)) {
      transition = transitionLocked(BreakerState::HalfOpen, now);
      locked = word_.load(std::memory_order_relaxed);
    }
    switch (stateOf(locked)) {
      case BreakerState::Closed: permit.emplace(Permit(this, epochOf(locked), false)); break;
      case BreakerState::HalfOpen:
        if (probes_issued_ < options_.half_open_requests) {
          ++probes_issued_;
          permit.emplace(Permit(this, epochOf(locked), true));
        }
        break;
      case BreakerState::Open: break;
    }
  }
  if (transition) {
    report(*transition);
  }
  if (!permit) {
    rejected_.fetch_add(1, std::memory_order_relaxed);
  }
  return permit;
}

void CircuitBreaker::onResult(Permit&& permit, bool failure, Duration latency, MonotonicTime now) {
  if (permit.breaker_ != this) {
    return;  // moved-from, or from another breaker
  }
  permit.breaker_ = nullptr;  // consumed: the destructor must not treat it as abandoned

  const Counters result{1, failure ? 1u : 0u,
                        latency > options_.slow_call_duration_threshold ? 1u : 0u};
  std::optional<Transition> transition;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t word = word_.load(std::memory_order_relaxed);
    if (epochOf(word) != permit.epoch_) {
      return;  // issued in an earlier state: it says nothing about the current one
    }
    switch (stateOf(word)) {
      case BreakerState::Closed: {
        window_.at(now) += result;
        const Counters live = window_.sum(now);
        if (live.calls >= options_.minimum_requests && trips(live)) {
          transition = transitionLocked(BreakerState::Open, now);
        }
        break;
      }
      case BreakerState::HalfOpen:
        probe_results_ += result;
        if (probe_results_.calls >= options_.half_open_requests) {
          transition = transitionLocked(
              trips(probe_results_) ? BreakerState::Open : BreakerState::Closed, now);
        }
        break;
      case BreakerState::Open: break;  // no permits are issued in OPEN, so no epoch can match
    }
  }
  if (transition) {
    report(*transition);
  }
}

void CircuitBreaker::onAbandoned(const Permit& permit) {
  if (!permit.probe_) {
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t word = word_.load(std::memory_order_relaxed);
  if (epochOf(word) == permit.epoch_ && stateOf(word) == BreakerState::HalfOpen &&
      probes_issued_ > 0) {
    --probes_issued_;
  }
}

CircuitBreaker::WindowSnapshot CircuitBreaker::window(MonotonicTime now) const {
  std::lock_guard<std::mutex> lock(mu_);
  const Counters live = window_.sum(now);
  return {live.calls, live.failures, live.slow};
}

}  // namespace bulwark::policies
