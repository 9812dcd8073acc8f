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
 * The largest duration a GEP-2257 duration can be formatted as, "99999h59m59s999ms" (about 11.4
 * years). The grammar spells larger sums ("99999h99999m"), but they have no canonical spelling
 * (each unit once, greatest first), so parseDuration rejects them as too large; sums of a few
 * parsed durations cannot overflow either.
 */
inline constexpr Duration kMaxConfigDuration{99999LL * 3600000 + 59LL * 60000 + 59LL * 1000 + 999};

/**
 * Parses a GEP-2257 duration. Never throws; every input, however long, gets a value or an error.
 * @return the duration (at most kMaxConfigDuration), or an error that starts with kDurationHint
 *         and says what was wrong ("0.25s" gets `no fractions: write "250ms"`, a bare number gets
 *         "add a unit").
 */
Result<Duration> parseDuration(std::string_view text);

/**
 * GEP-2257's canonical spelling, each unit once, greatest first: 0 -> "0s", 90000ms -> "1m30s",
 * 1500ms -> "1s500ms". Every value up to kMaxConfigDuration (everything parseDuration returns)
 * parses back to itself; larger ones print with more than five hour digits, which does not.
 */
std::string formatDuration(Duration duration);

}  // namespace bulwark::config
