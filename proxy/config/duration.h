#pragma once

// GEP-2257 durations ("250ms", "1s", "1m30s", "24h"): integers only, units h, m, s, ms, at most
// five digits per part and four parts, matching ^([0-9]{1,5}(h|m|s|ms)){1,4}$ as Gateway API and
// Istio CRDs do. Thread: any (pure functions).

#include <string>
#include <string_view>

#include "common/result.h"
#include "proxy/config/spec.h"

namespace bulwark::config {

/** The start of every duration error, so users see one hint everywhere. */
inline constexpr std::string_view kDurationHint = "expected a duration like \"250ms\"";

/**
 * Parses a GEP-2257 duration.
 * @return the duration, or an error that starts with kDurationHint and says what was wrong
 *         ("0.25s" gets `no fractions: write "250ms"`, a bare number gets "add a unit").
 */
Result<Duration> parseDuration(std::string_view text);

/** Shortest GEP-2257 spelling: 0 -> "0s", 90000ms -> "1m30s", 1500ms -> "1s500ms". */
std::string formatDuration(Duration duration);

}  // namespace bulwark::config
