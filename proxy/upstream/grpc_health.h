#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

/**
 * The grpc.health.v1 wire format, hand-framed (two tiny messages do not justify generated code
 * in the data plane). Thread: any (pure).
 */
namespace bulwark::upstream::grpc_health {

/** A gRPC length-prefixed HealthCheckRequest{service = 1}. */
std::string encodeCheckRequest(std::string_view service);
/**
 * @param body the response's DATA (one length-prefixed HealthCheckResponse).
 * @return the `status` enum (field 1; SERVING = 1), or nullopt when malformed. An empty message
 *         is status 0 (UNKNOWN).
 */
std::optional<uint32_t> decodeCheckResponse(std::string_view body);
inline constexpr uint32_t kServing = 1;

}  // namespace bulwark::upstream::grpc_health
