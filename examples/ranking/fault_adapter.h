#pragma once

#include "examples/common/fault_injector.h"
#include "examples/ranking/ranking_service.h"

namespace bulwark::examples::ranking {

/**
 * Maps the shared fault knobs onto gRPC: error -> FaultSpec::error_grpc_code with the optional
 * pushback trailer, hang/reset/crash/latency/slow body as described on RankingServiceImpl.
 * Thread: any (pure).
 */
CallFault toCallFault(const FaultDecision& decision);

/**
 * @return a decider drawing from `injector` with a per-thread PRNG (grpc++ handler threads are
 * many; policies::Random is not synchronised). `injector` must outlive the decider.
 */
CallFaultDecider makeCallFaultDecider(FaultInjector& injector);

}  // namespace bulwark::examples::ranking
