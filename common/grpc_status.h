#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace bulwark {

/**
 * gRPC status codes (google.rpc.Code); values are the wire numbers. The one list of them: the
 * policies classify with it, the codecs parse and write it, the config names it.
 */
enum class GrpcStatus : uint8_t {
  Ok = 0,
  Cancelled = 1,
  Unknown = 2,
  InvalidArgument = 3,
  DeadlineExceeded = 4,
  NotFound = 5,
  AlreadyExists = 6,
  PermissionDenied = 7,
  ResourceExhausted = 8,
  FailedPrecondition = 9,
  Aborted = 10,
  OutOfRange = 11,
  Unimplemented = 12,
  Internal = 13,
  Unavailable = 14,
  DataLoss = 15,
  Unauthenticated = 16,
};

/** @return the status for a wire number, or nullopt if it is not 0..16. */
std::optional<GrpcStatus> grpcStatusFromCode(uint32_t code);

/**
 * @return the status of a `grpc-status` header value ("14"), or nullopt for anything else
 *         ("014", "x", "17"): decimal without leading zeros, as PROTOCOL-HTTP2.md writes it.
 */
std::optional<GrpcStatus> parseGrpcStatus(std::string_view value);

/** @return the canonical upper-case name, e.g. "UNAVAILABLE" (metric label `grpc_status`). */
std::string_view grpcStatusName(GrpcStatus status);

/** @return the status named `name` ("UNAVAILABLE") or numbered ("14"), or nullopt. */
std::optional<GrpcStatus> grpcStatusFromName(std::string_view name);

/** Every status name, in wire order (for config validation and "did you mean"). */
const std::vector<std::string_view>& grpcStatusNames();

/**
 * @return the status a gRPC client synthesises when a response carries no `grpc-status`
 *         (grpc/grpc http-grpc-status-mapping.md, as Envoy's httpToGrpcStatus): 400 INTERNAL,
 *         401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 UNIMPLEMENTED, 429/502/503/504
 *         UNAVAILABLE, anything else UNKNOWN.
 */
GrpcStatus grpcStatusFromHttp(uint32_t http_status);

}  // namespace bulwark
