#pragma once

// Every answer bulwark makes up itself, one kind each, and the one table that gives a kind its
// HTTP status, its gRPC status (gRPC callers get a trailers-only answer), the reason it carries
// in x-bulwark-reason, metrics and the access log, and the fallback trigger that may replace it
// with the route's configured answer. Thread: any (constant data).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/grpc_status.h"
#include "proxy/config/vocabulary.h"
#include "proxy/http/headers.h"

namespace bulwark::http {

enum class LocalReplyKind : uint8_t {
  RouteNotFound,
  RequestTimeout,
  StreamIdleTimeout,
  UpstreamPerTryTimeout,
  UpstreamConnectFailure,
  UpstreamConnectTimeout,
  UpstreamOverflow,
  UpstreamRefusedStream,
  UpstreamReset,
  UpstreamProtocolError,
  Upstream5xx,
  NoHealthyUpstream,
  CircuitOpen,
  RateLimited,
  LoadShed,
  BulkheadFull,
  BulkheadPartitionFull,
  BulkheadQueueTimeout,
  IdempotentReplay,
  IdempotencyKeyInFlight,
  IdempotencyKeyMismatch,
  IdempotencyStoreFull,
  IdempotencyKeyMissing,
  IdempotencyKeyInvalid,
  IdempotencyBodyTooLarge,
  UpgradeNotAllowed,
  UpstreamTlsError,
  InvalidPath,
  PathRedirect,
  RateLimitUnavailable,
  IdempotencyStoreUnavailable,
  OverloadReset,       // runtime.overload reset this stream to give memory back
  RequestBodyTooSlow,  // limits.minRequestBodyRate
};

/** What a kind of local reply is. */
struct LocalReplyInfo {
  /** x-bulwark-reason, grpc-message, metric label and access-log response_code_details. */
  std::string_view reason;
  uint32_t http_status;
  GrpcStatus grpc_status;
  /** The route fallback that may answer instead; None: never replaced. */
  config::FallbackTrigger fallback_trigger;
};

/** The table row of `kind`. */
const LocalReplyInfo& localReplyInfo(LocalReplyKind kind);

/** A local reply a filter or the router asks for. Thread: value type. */
struct LocalReply {
  LocalReply() = default;
  explicit LocalReply(LocalReplyKind k) : kind(k) {}

  LocalReplyKind kind = LocalReplyKind::UpstreamReset;
  /** Replaces the kind's HTTP status (loadShedding.reject, an upstream 5xx passed on). */
  std::optional<uint32_t> status;
  /** Replaces the kind's gRPC status (loadShedding.reject). */
  std::optional<GrpcStatus> grpc_status;
  HeaderMap headers;  // extra headers (Retry-After, RateLimit, ...)
  std::string body;   // empty = "<reason>\n"
  /**
   * Send the status, `headers` and `body` as given (a replayed stored response, a problem+json
   * answer): no generated content-type or x-bulwark-reason, no fallback; content-length is set
   * from the body. The kind still names the reply in metrics and the access log. HTTP only.
   */
  bool verbatim = false;

  const LocalReplyInfo& info() const { return localReplyInfo(kind); }
  std::string_view reason() const { return info().reason; }
  uint32_t httpStatus() const { return status.value_or(info().http_status); }
  GrpcStatus grpcStatus() const { return grpc_status.value_or(info().grpc_status); }
};

}  // namespace bulwark::http
