#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace grpc {
class ServerContext;
}

namespace bulwark::examples::ranking {

/**
 * Lets request handlers wait (injected latency, hangs) without outliving the call: a wait ends
 * when its time is up, when the call is cancelled (client gone, deadline passed, server shutdown
 * deadline) or when the server begins to stop.
 * Thread: any.
 */
class DrainSignal {
public:
  enum class WaitResult { Elapsed, Cancelled, Stopping };

  /** Waits up to `duration`; `duration.max()` means "until cancelled or stopping" (a hang). */
  WaitResult waitFor(grpc::ServerContext& ctx, std::chrono::nanoseconds duration);

  /** Wakes every wait with Stopping, now and in future. */
  void stop();

  bool stopping() const;

private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
};

}  // namespace bulwark::examples::ranking
