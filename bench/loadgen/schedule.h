#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace bulwark::bench {

/**
 * One phase of offered load: a constant rate (rps_from == rps_to) or a linear ramp from
 * rps_from to rps_to over `duration`. A rate of 0 is an idle phase (no requests).
 * Thread: value type.
 */
struct PhaseSpec {
  std::string name;
  double rps_from = 0;
  double rps_to = 0;
  std::chrono::nanoseconds duration{0};

  bool isRamp() const { return rps_from != rps_to; }
  /**
   * Requests in the phase: floor of the integral of the rate, (from + to) / 2 * duration.
   * 200 rps for 2 s is exactly 400.
   */
  uint64_t requestCount() const;
  /**
   * Intended send time of request i (0-based) from the phase start: the t where the cumulative
   * arrivals N(t) = from * t + (to - from) * t^2 / (2 * duration) equal i. Constant rate: i / rps.
   */
  std::chrono::nanoseconds offsetOf(uint64_t i) const;
};

/** "10s", "500ms", "2m", "1.5s", "250us", "1h"; a bare number is seconds. */
Result<std::chrono::nanoseconds> parseDuration(std::string_view text);
/** "NAME:RPS:DURATION" with RPS "500" or "100-500" (ramp). */
Result<PhaseSpec> parsePhase(std::string_view text);

/** One scheduled request. Thread: value type. */
struct Arrival {
  size_t phase = 0;
  uint64_t index_in_phase = 0;
  /** Sequence number over the whole run. */
  uint64_t sequence = 0;
  /** Intended send time from the start of the run. */
  std::chrono::nanoseconds at{0};
};

/**
 * The open-loop arrival schedule: phases back to back, request i of a phase due at
 * phaseStart + offsetOf(i), whatever happened to earlier requests.
 * Thread: value type; one thread at a time.
 */
class ArrivalSchedule {
public:
  explicit ArrivalSchedule(std::vector<PhaseSpec> phases);

  /** The next arrival, or nullopt when every phase is done. */
  std::optional<Arrival> peek() const;
  void advance();

  const std::vector<PhaseSpec>& phases() const { return phases_; }
  std::chrono::nanoseconds phaseStart(size_t phase) const { return starts_.at(phase); }
  std::chrono::nanoseconds totalDuration() const;
  uint64_t totalRequests() const;

private:
  void skipEmptyPhases();

  std::vector<PhaseSpec> phases_;
  std::vector<std::chrono::nanoseconds> starts_;
  std::vector<uint64_t> counts_;
  size_t phase_ = 0;
  uint64_t index_ = 0;
  uint64_t sequence_ = 0;
};

}  // namespace bulwark::bench
