#include "examples/ranking/drain_signal.h"

#include <algorithm>

#include <grpcpp/server_context.h>

namespace bulwark::examples::ranking {
namespace {

// grpc++ has no callback for "this sync call was cancelled", so the wait re-checks
// IsCancelled() this often; it bounds how long a hung handler outlives its deadline.
constexpr std::chrono::milliseconds kCancelPollInterval{5};

}  // namespace

DrainSignal::WaitResult DrainSignal::waitFor(grpc::ServerContext& ctx,
                                             std::chrono::nanoseconds duration) {
  using Clock = std::chrono::steady_clock;
  const bool forever = duration == std::chrono::nanoseconds::max();
  const auto deadline = forever ? Clock::time_point::max() : Clock::now() + duration;
  std::unique_lock lock(mu_);
  while (true) {
    if (stopping_) {
      return WaitResult::Stopping;
    }
    if (ctx.IsCancelled()) {
      return WaitResult::Cancelled;
    }
    const auto now = Clock::now();
    if (now >= deadline) {
      return WaitResult::Elapsed;
    }
    const auto slice = forever ? Clock::duration(kCancelPollInterval)
                               : std::min<Clock::duration>(deadline - now, kCancelPollInterval);
    cv_.wait_for(lock, slice);
  }
}

void DrainSignal::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
}

bool DrainSignal::stopping() const {
  std::lock_guard lock(mu_);
  return stopping_;
}

}  // namespace bulwark::examples::ranking
