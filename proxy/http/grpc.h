#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace bulwark::http::grpc {

/** gRPC status codes (grpc/grpc doc/statuscodes.md). */
enum class Status : int {
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

/** Upper-case name for metric labels ("OK", "UNAVAILABLE", ...); "UNKNOWN" for out of range. */
std::string_view statusName(int code);
/** Parses a grpc-status value; nullopt when not a number. */
std::optional<int> parseStatus(std::string_view value);
/** Parses a status name ("UNAVAILABLE") or number ("14"). */
std::optional<int> statusFromName(std::string_view name);
/** HTTP status -> gRPC status for responses that are not gRPC (gRPC's http-grpc-status-mapping.md).
 */
int statusFromHttp(uint32_t http_status);
/** Parses grpc-timeout ("100m", "5S", "2H"); nullopt when malformed (callers then ignore it). */
std::optional<std::chrono::microseconds> parseTimeout(std::string_view value);
/** Encodes a duration as grpc-timeout (at most 8 digits, in the finest unit that fits). */
std::string encodeTimeout(std::chrono::microseconds timeout);

}  // namespace bulwark::http::grpc
