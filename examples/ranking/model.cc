#include "examples/ranking/model.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace bulwark::examples::ranking {
namespace {

// A draw further out than this many sigmas is clamped, so one unlucky request cannot take
// seconds; at sigma 0.2 the cap is 2x the median.
constexpr double kMaxSigmas = 3.5;

}  // namespace

ModelRuntime::ModelRuntime(ModelOptions options)
    : options_(options), slots_(static_cast<std::uint64_t>(std::max(options.slots, 1))) {
  // Fixed weights: the model is deterministic so ranking order is testable.
  std::mt19937_64 rng(0x5eed'0f'4a4e4bull);
  auto uniform = [&rng] {
    return static_cast<float>(static_cast<double>(rng() >> 11) * 0x1.0p-53);
  };
  for (auto& row : w1_) {
    for (auto& w : row) {
      w = (uniform() * 2.0f - 1.0f) * 0.3f;
    }
  }
  for (auto& b : b1_) {
    b = (uniform() * 2.0f - 1.0f) * 0.05f;
  }
  for (auto& w : w2_) {
    w = (uniform() * 2.0f - 1.0f) * 0.3f;
  }
}

void ModelRuntime::forward(std::span<const ModelInput> inputs, std::span<float> out) const {
  for (std::size_t r = 0; r < inputs.size(); ++r) {
    const ModelInput& x = inputs[r];
    float y = 0;
    for (std::size_t h = 0; h < kModelHidden; ++h) {
      float a = b1_[h];
      for (std::size_t i = 0; i < kModelInputs; ++i) {
        a += w1_[h][i] * x[i];
      }
      y += w2_[h] * std::max(a, 0.0f);
    }
    // Clamp the output (the seed: "clamp/normalize model outputs to avoid outliers").
    out[r] = std::tanh(y);
  }
}

std::chrono::nanoseconds ModelRuntime::drawInferenceTime() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  std::normal_distribution<double> normal(0.0, 1.0);
  const double z = std::clamp(normal(rng), -kMaxSigmas, kMaxSigmas);
  const double ns =
      static_cast<double>(options_.cost.count()) * 1000.0 * std::exp(options_.jitter_sigma * z);
  return std::chrono::nanoseconds(static_cast<std::int64_t>(ns));
}

void ModelRuntime::acquireSlot() {
  std::unique_lock lock(mu_);
  const std::uint64_t ticket = next_ticket_++;
  slot_cv_.wait(lock, [&] { return ticket < released_ + slots_; });
}

void ModelRuntime::releaseSlot() {
  {
    std::lock_guard lock(mu_);
    ++released_;
  }
  slot_cv_.notify_all();
}

bool ModelRuntime::infer(std::span<const ModelInput> inputs, std::span<float> out) {
  using Clock = std::chrono::steady_clock;
  acquireSlot();
  const auto start = Clock::now();
  const auto deadline = start + drawInferenceTime();
  forward(inputs, out);
  bool completed = true;
  if (options_.burn_cpu) {
    // Recompute into scratch until the drawn time is spent: the replica is CPU-bound.
    std::vector<float> scratch(out.size());
    while (Clock::now() < deadline) {
      if (stopped_.load(std::memory_order_relaxed)) {
        completed = false;
        break;
      }
      forward(inputs, scratch);
    }
  } else {
    std::unique_lock lock(mu_);
    completed = !cv_.wait_until(lock, deadline, [this] { return stopped_.load(); });
  }
  releaseSlot();
  return completed;
}

void ModelRuntime::shutdown() {
  {
    std::lock_guard lock(mu_);
    stopped_.store(true);
  }
  cv_.notify_all();
}

}  // namespace bulwark::examples::ranking
