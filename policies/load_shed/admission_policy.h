#pragma once

// Priority-aware admission against a (possibly adaptive) concurrency limit: shed the lowest
// priority first.

#include <atomic>
#include <cstdint>
#include <optional>
#include <string_view>

#include "policies/bulkhead/concurrency_limit.h"

namespace bulwark::policies {

/** Request priority from loadShedding.priorityHeader. */
enum class Priority : uint8_t { Critical, Default, Sheddable };

/**
 * Parses a priority header value, ASCII case-insensitive, surrounding whitespace ignored:
 * "critical" | "default" | "sheddable".
 * @return nullopt for anything else (the caller then uses Priority::Default).
 */
std::optional<Priority> parsePriority(std::string_view value);

/** @return "critical", "default" or "sheddable" (metric label `priority`). */
std::string_view priorityLabel(Priority priority);

/**
 * The in-flight bound for a priority under `limit` (the chosen rule):
 *   sheddable: max(1, floor(limit * 80 / 100))  rejected once 80 % of the limit is in use
 *   default:   limit                            rejected at the limit
 *   critical:  limit + max(1, limit / 10)       may overshoot by 10 % (at least one)
 * so under rising load sheddable work goes first, then default, and critical work still
 * gets through a saturated limit, yet nothing can grow without bound.
 * Thread: any (pure).
 */
uint32_t admissionBound(Priority priority, uint32_t limit);

/**
 * Exact in-flight counter for the load_shed filter: admits a request while the number in flight
 * is below admissionBound(priority, limit) (a CAS loop: the bound is never exceeded), and records
 * the window's peak concurrency for the adaptive limit.
 * Thread: any (atomics). Must outlive its permits.
 */
class PriorityAdmission {
public:
  PriorityAdmission() : inflight_(0) {}

  /**
   * @param limit current limit (AdaptiveLimit::limit(), or a static one).
   * @return a permit to hold until the request completes, or nullopt: shed.
   */
  std::optional<ConcurrencyLimit::Permit> tryAdmit(Priority priority, uint32_t limit);

  uint32_t inflight() const { return inflight_.active(); }

  /** @return the peak in-flight count since the previous call, and restarts from the current. */
  uint32_t takePeakInflight();

private:
  ConcurrencyLimit inflight_;  // its own max is unused; the bound is per call
  std::atomic<uint32_t> peak_{0};
};

}  // namespace bulwark::policies
