#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bulwark::testing {

/** gRPC status codes (grpc/grpc doc/statuscodes.md). Thread: value type. */
enum class GrpcStatus : int {
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

/** Readable name ("UNAVAILABLE"), for failure messages. */
const char* grpcStatusName(GrpcStatus status);

/**
 * Frames one gRPC message: 1-byte compressed flag, 4-byte big-endian length, payload.
 * `compressed` only sets the flag byte (hostile tests send flag 1 without grpc-encoding).
 */
std::string encodeGrpcMessage(std::string_view payload, bool compressed = false);

/** Frames with an arbitrary declared length (hostile tests: prefix 0xFFFFFFFF, truncation). */
std::string encodeGrpcPrefix(uint32_t declared_length, uint8_t flag = 0);

/**
 * Splits a complete gRPC body into message payloads. Returns nullopt when the body is not a
 * whole number of well-formed frames (truncated prefix or payload).
 */
std::optional<std::vector<std::string>> decodeGrpcMessages(std::string_view body);

/**
 * Percent-decodes a grpc-message header value (the wire form is percent-encoded UTF-8).
 */
std::string decodeGrpcMessageHeader(std::string_view value);

/** Percent-encodes a grpc-message value per the gRPC HTTP/2 protocol document. */
std::string encodeGrpcMessageHeader(std::string_view value);

}  // namespace bulwark::testing
