#include "policies/overload/overload_evaluator.h"

#include <algorithm>

namespace bulwark::policies {
namespace {

constexpr std::array<std::string_view, kOverloadActionCount> kNames = {
    "disableKeepalive", "stopAcceptingConnections", "resetHighMemoryStreams"};

}  // namespace

std::string_view overloadActionName(OverloadAction action) {
  return kNames[static_cast<size_t>(action)];
}

std::optional<OverloadAction> overloadActionFromName(std::string_view name) {
  for (size_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i] == name) {
      return static_cast<OverloadAction>(i);
    }
  }
  return std::nullopt;
}

OverloadEvaluator::OverloadEvaluator(uint64_t max_heap_bytes,
                                     std::vector<OverloadThreshold> thresholds)
    : max_heap_bytes_(max_heap_bytes), thresholds_(std::move(thresholds)) {}

const OverloadState& OverloadEvaluator::evaluate(uint64_t heap_bytes) {
  if (max_heap_bytes_ == 0) {
    state_ = {};
    return state_;
  }
  const double pressure = static_cast<double>(heap_bytes) / static_cast<double>(max_heap_bytes_);
  for (const auto& t : thresholds_) {
    bool& on = state_.active[static_cast<size_t>(t.action)];
    if (pressure >= t.threshold) {
      on = true;
    } else if (pressure < t.threshold - kHysteresis) {
      on = false;
    }
  }
  return state_;
}

uint64_t OverloadEvaluator::bytesOver(OverloadAction action, uint64_t heap_bytes) const {
  for (const auto& t : thresholds_) {
    if (t.action != action) {
      continue;
    }
    const auto at = static_cast<uint64_t>(t.threshold * static_cast<double>(max_heap_bytes_));
    return heap_bytes > at ? heap_bytes - at : 0;
  }
  return 0;
}

std::vector<size_t> selectStreamsToReset(const std::vector<uint64_t>& buffered_bytes,
                                         uint64_t target_bytes, uint64_t min_stream_bytes) {
  std::vector<size_t> order;
  for (size_t i = 0; i < buffered_bytes.size(); ++i) {
    if (buffered_bytes[i] >= min_stream_bytes && buffered_bytes[i] > 0) {
      order.push_back(i);
    }
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return buffered_bytes[a] > buffered_bytes[b]; });
  std::vector<size_t> chosen;
  uint64_t freed = 0;
  for (size_t i : order) {
    if (!chosen.empty() && freed >= target_bytes) {
      break;
    }
    chosen.push_back(i);
    freed += buffered_bytes[i];
  }
  return chosen;
}

}  // namespace bulwark::policies
