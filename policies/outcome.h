#pragma once

// One classification of every attempt result, shared by retries, the circuit breaker, outlier
// detection and metrics so that they can never disagree about what happened: one trailers-aware
// classifier for everything.

#include <cstdint>
#include <optional>
#include <string_view>

#include "common/grpc_status.h"

namespace bulwark::policies {

/** What went wrong locally when no complete response arrived. */
enum class LocalFailure : uint8_t {
  None,            // a response (status line / HEADERS) arrived
  ConnectFailure,  // TCP connect refused/unreachable, TLS handshake failed
  ConnectTimeout,  // connect did not complete within connectTimeout
  Reset,           // connection closed or stream reset before a complete response
  RefusedStream,   // HTTP/2 RST_STREAM(REFUSED_STREAM): the server did not process it
  GoAway,          // stream above a GOAWAY's last-stream-id: never processed
  PerTryTimeout,   // no response headers within the per-try timeout
  ProtocolError,   // malformed response (bad status line, invalid HEADERS)
};

/**
 * Everything the router knows about one finished attempt; the input of classify().
 * Thread: value type.
 */
struct AttemptResult {
  /** HTTP status of the response headers; 0 when no response headers arrived. */
  uint32_t http_status = 0;
  /** `grpc-status` from the response headers (trailers-only) or the trailers. */
  std::optional<GrpcStatus> grpc_status;
  /** Why the attempt failed without a response; None when a response arrived. */
  LocalFailure local_failure = LocalFailure::None;
  /** True once any request byte was written to the host's connection. */
  bool request_sent = false;
  /** True when the request is a gRPC call (content-type application/grpc*). */
  bool grpc = false;
  /**
   * True when the response asked the client to back off: it carried `Retry-After` (HTTP) or
   * `grpc-retry-pushback-ms` (gRPC). Not part of the classification.
   */
  bool pushback = false;
};

/** The one classification of an attempt result. */
enum class Outcome : uint8_t {
  Success,       // 1xx-3xx, or gRPC OK
  Http4xx,       // a 4xx answer (the caller's fault; never a host failure)
  Http5xx,       // 5xx other than 502/503/504
  GatewayError,  // 502, 503, 504
  ConnectFailure,
  ConnectTimeout,
  ResetBeforeRequest,  // reset/close before any request byte reached the host
  Reset,               // reset/close after the request was (partly) sent
  RefusedStream,
  GoAwayBeforeProcessing,
  PerTryTimeout,
  ProtocolError,
  GrpcCancelled,
  GrpcDeadlineExceeded,
  GrpcInternal,
  GrpcResourceExhausted,
  GrpcUnavailable,
  GrpcServerError,  // UNKNOWN, DATA_LOSS: server-side faults without a retry token
  GrpcClientError,  // INVALID_ARGUMENT, NOT_FOUND, ... : the caller's fault, like 4xx
};

/**
 * Classifies one attempt. Precedence: a local failure wins (there is no usable response); then a
 * gRPC status (from headers or trailers; for a gRPC call without one, the HTTP status is
 * mapped with grpcStatusFromHttp() unless it is 200); then the HTTP status class.
 * Thread: any (pure).
 */
Outcome classify(const AttemptResult& result);

/**
 * @return a stable short label for metrics and access logs, e.g. "5xx", "gateway-error",
 *         "connect-failure", "unavailable". The set is fixed (bounded label cardinality) and
 *         uses retryOn token spelling wherever a token exists.
 */
std::string_view reasonLabel(Outcome outcome);

/** @return true for every outcome except Success, Http4xx and GrpcClientError. */
bool isFailure(Outcome outcome);

/**
 * @return true when the host (or the path to it) failed: the outcomes a circuit breaker counts.
 *         4xx and client-caused gRPC statuses are not failures; CANCELLED is not either (it is
 *         normally the downstream giving up); RESOURCE_EXHAUSTED is (a rate-limited host, as in
 *         Linkerd's unified breaker).
 */
bool isBreakerFailure(Outcome outcome);

/** @return true for failures that originate locally (no response): connect, reset, timeouts. */
bool isLocalOriginFailure(Outcome outcome);

/**
 * @return true when the answer counts as a server 5xx for outlier detection: Http5xx,
 *         GatewayError, and gRPC INTERNAL, UNKNOWN, DATA_LOSS, UNAVAILABLE, DEADLINE_EXCEEDED
 *         (their HTTP equivalents are 500/503/504).
 */
bool isServer5xxLike(Outcome outcome);

/** @return true for 502/503/504 and gRPC UNAVAILABLE / DEADLINE_EXCEEDED (503/504 equivalents). */
bool isGatewayErrorLike(Outcome outcome);

/**
 * @return true when the request provably never reached the host's application, so even a
 *         non-idempotent request may be replayed: connect failure or timeout, REFUSED_STREAM,
 *         above GOAWAY, or a reset before any request byte was written.
 */
bool requestNeverProcessed(const AttemptResult& result);

}  // namespace bulwark::policies
