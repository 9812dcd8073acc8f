#pragma once

// Fixed word lists the schema accepts (config-and-operations.md §2.9): retryOn tokens, HTTP
// methods, gRPC status names, fallback triggers. Kept apart from the parser so the router and
// filters can share the same spelling. Thread: any (constant data).

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

/** fallback.on triggers. */
const std::vector<std::string>& fallbackTriggers();

}  // namespace bulwark::config
