#pragma once

// The overload manager's decisions (runtime.overload): which actions are on for a heap reading,
// and which streams to reset when memory must be given back. The server samples the heap and
// the workers act; both call in here with the numbers.

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace bulwark::policies {

enum class OverloadAction : uint8_t {
  DisableKeepalive,          // answer with Connection: close / GOAWAY, so clients spread out
  StopAcceptingConnections,  // close new connections at accept
  ResetHighMemoryStreams,    // reset the streams holding the most buffered bytes
};
inline constexpr size_t kOverloadActionCount = 3;

std::string_view overloadActionName(OverloadAction action);
std::optional<OverloadAction> overloadActionFromName(std::string_view name);

/** One action and the fraction of the heap limit at which it turns on. Thread: value type. */
struct OverloadThreshold {
  OverloadAction action;
  double threshold;  // (0, 1]
};

/** Which actions are on. Thread: value type. */
struct OverloadState {
  std::array<bool, kOverloadActionCount> active{};
  bool isActive(OverloadAction a) const { return active[static_cast<size_t>(a)]; }
};

/**
 * Turns heap readings into action states. An action turns on when the heap reaches
 * threshold x max_heap_bytes and off only once it is back under (threshold - kHysteresis) x
 * max_heap_bytes, so a heap hovering at a threshold does not flip the action every sample.
 * Thread: not synchronised (the server's main thread owns it).
 */
class OverloadEvaluator {
public:
  static constexpr double kHysteresis = 0.05;

  OverloadEvaluator(uint64_t max_heap_bytes, std::vector<OverloadThreshold> thresholds);

  /** Updates and returns the action states for a reading. */
  const OverloadState& evaluate(uint64_t heap_bytes);
  const OverloadState& state() const { return state_; }
  uint64_t maxHeapBytes() const { return max_heap_bytes_; }
  /** Bytes above the lowest threshold of `action` (0 when under it or not configured). */
  uint64_t bytesOver(OverloadAction action, uint64_t heap_bytes) const;

private:
  uint64_t max_heap_bytes_;
  std::vector<OverloadThreshold> thresholds_;
  OverloadState state_;
};

/**
 * Streams to reset to give back `target_bytes`: the largest first, only streams holding at
 * least `min_stream_bytes` (a small stream's reset frees little and hurts a client for it), and
 * at least one when any qualifies. Ties keep the earlier index first.
 * @return indexes into `buffered_bytes`.
 */
std::vector<size_t> selectStreamsToReset(const std::vector<uint64_t>& buffered_bytes,
                                         uint64_t target_bytes, uint64_t min_stream_bytes);

}  // namespace bulwark::policies
