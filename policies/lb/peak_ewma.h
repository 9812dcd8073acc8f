#pragma once

#include <string_view>

#include "policies/lb/load_balancer.h"

namespace bulwark::policies::lb {

inline constexpr std::string_view kPeakEwmaName = "PEAK_EWMA";

/**
 * PEAK_EWMA: latency-aware P2C (Finagle `PeakEwma`, Linkerd/tower `peak_ewma`). Each pick draws
 * choice_count distinct allowed hosts (weighted, as LEAST_REQUEST does) and takes the lowest
 *
 *     cost = max(ewma_latency(now), outstanding_floor(now)) × (active_requests + 1) / weight
 *
 * where ewma_latency is the peak-sensitive estimate kept by onAttemptEnd()/recordLatency()
 * (a slower sample replaces the estimate at once; faster samples pull it down with time constant
 * LbConfig::ewma_decay), decayed towards 0 since the last sample so that a host that stopped
 * receiving traffic is probed again. A host without samples costs LbConfig::ewma_default_rtt.
 * outstanding_floor is outstandingLatencyFloor(): how long the host's oldest attempt in flight
 * has run at least, so a host that stops answering looks slow before its first late answer.
 * LbContext::now must be set. Cost: as LEAST_REQUEST, plus one exp() per candidate.
 */
LbFactoryPtr makePeakEwmaFactory();

}  // namespace bulwark::policies::lb
