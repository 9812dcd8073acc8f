#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <vector>

#include "examples/ranking/features.h"

namespace bulwark::examples::ranking {

// Model input: user ⊙ item (kEmbeddingDim) followed by affinity, popularity and recency.
inline constexpr std::size_t kModelInputs = kEmbeddingDim + 3;
inline constexpr std::size_t kModelHidden = 32;
using ModelInput = std::array<float, kModelInputs>;

/** Cost model of the ranking model; see "Latency model" in examples/ranking/README.md. */
struct ModelOptions {
  // Median inference time of one request (the flag --model-cost-us).
  std::chrono::microseconds cost{4500};
  // Log-normal spread of the inference time: p99 = cost * exp(2.326 * sigma).
  double jitter_sigma = 0.2;
  // Concurrent inferences per replica (the seed's ranker has 2 vCPU); requests beyond queue.
  int slots = 2;
  // true: spend the whole inference time computing the network repeatedly (CPU-bound replica);
  // false: compute it once and wait out the rest of the modelled time (an accelerator-bound one).
  bool burn_cpu = false;
};

/**
 * The ranking model: a small two-layer perceptron with fixed weights that re-scores the top
 * candidates, plus a latency model for its cost. Each infer() draws a log-normal inference time
 * around `cost`, holds one of `slots` inference slots for that long, and runs the network on the
 * real inputs while holding it. With 2 slots and the 4.5 ms default a replica saturates near
 * 400 rq/s, in line with the seed's "~300 req/sec per 2 vCPU ranker", and queues beyond that.
 * Slots are granted first come, first served (a ticket queue), so overload shows up as a
 * queueing delay every request shares rather than as starvation of unlucky ones.
 * Thread: any; waits for the inference time end early on shutdown().
 */
class ModelRuntime {
public:
  explicit ModelRuntime(ModelOptions options);

  /**
   * Scores each row of `inputs` into `out` (same size).
   * @return false when the runtime was shut down while waiting; `out` is then still filled.
   */
  bool infer(std::span<const ModelInput> inputs, std::span<float> out);

  /** Ends all current and future waits (server drain). */
  void shutdown();

  /** Runs the network only, without the latency model: used by tests and calibration. */
  void forward(std::span<const ModelInput> inputs, std::span<float> out) const;

  const ModelOptions& options() const { return options_; }

private:
  std::chrono::nanoseconds drawInferenceTime();
  void acquireSlot();
  void releaseSlot();

  const ModelOptions options_;
  std::array<std::array<float, kModelInputs>, kModelHidden> w1_{};
  std::array<float, kModelHidden> b1_{};
  std::array<float, kModelHidden> w2_{};
  const std::uint64_t slots_;
  std::mutex mu_;
  std::condition_variable cv_;        // shutdown
  std::condition_variable slot_cv_;   // a slot was released
  std::uint64_t next_ticket_ = 0;     // guarded by mu_
  std::uint64_t released_ = 0;        // guarded by mu_; ticket t runs once t < released_ + slots_
  std::atomic<bool> stopped_{false};  // written under mu_ so waiters cannot miss it
};

}  // namespace bulwark::examples::ranking
