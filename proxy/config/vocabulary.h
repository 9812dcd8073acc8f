#pragma once

// Fixed word lists the schema accepts: retryOn tokens, HTTP
// methods, gRPC status names, fallback triggers. Kept apart from the parser so the router and
// filters can share the same spelling. Thread: any (constant data).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bulwark::config {

/** HTTP retryOn tokens (Envoy/Istio vocabulary). */
const std::vector<std::string>& httpRetryOnTokens();
/** gRPC retryOn tokens (lower-case, dashed gRPC status names). */
const std::vector<std::string>& grpcRetryOnTokens();
/** httpRetryOnTokens() followed by grpcRetryOnTokens(). */
const std::vector<std::string>& allRetryOnTokens();

/** Request methods a route may match (RFC 9110 plus PATCH). */
const std::vector<std::string>& httpMethods();

/** What may make a route answer with its configured fallback (`fallback.on`). */
enum class FallbackTrigger : uint8_t { None, CircuitOpen, Shed, RateLimited, Timeout, Upstream5xx };
/** fallback.on trigger names, in FallbackTrigger order after None. */
const std::vector<std::string>& fallbackTriggers();
/** "circuitOpen" for CircuitOpen, ...; "" for None. */
std::string_view fallbackTriggerName(FallbackTrigger trigger);
/** The trigger named `name`, or nullopt. */
std::optional<FallbackTrigger> fallbackTriggerFromName(std::string_view name);

}  // namespace bulwark::config
