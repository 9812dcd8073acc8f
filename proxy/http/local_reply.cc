#include "proxy/http/local_reply.h"

#include <array>

namespace bulwark::http {
namespace {

using config::FallbackTrigger;

constexpr size_t kKinds = static_cast<size_t>(LocalReplyKind::RequestBodyTooSlow) + 1;

// Indexed by LocalReplyKind; localReplyInfo() checks each row is at its kind's position.
constexpr std::array<std::pair<LocalReplyKind, LocalReplyInfo>, kKinds> kTable = {{
    {LocalReplyKind::RouteNotFound,
     {"route_not_found", 404, GrpcStatus::Unimplemented, FallbackTrigger::None}},
    {LocalReplyKind::RequestTimeout,
     {"request_timeout", 504, GrpcStatus::DeadlineExceeded, FallbackTrigger::Timeout}},
    {LocalReplyKind::StreamIdleTimeout,
     {"stream_idle_timeout", 504, GrpcStatus::DeadlineExceeded, FallbackTrigger::Timeout}},
    {LocalReplyKind::UpstreamPerTryTimeout,
     {"upstream_per_try_timeout", 504, GrpcStatus::DeadlineExceeded, FallbackTrigger::Timeout}},
    {LocalReplyKind::UpstreamConnectFailure,
     {"upstream_connect_failure", 503, GrpcStatus::Unavailable, FallbackTrigger::Upstream5xx}},
    {LocalReplyKind::UpstreamConnectTimeout,
     {"upstream_connect_timeout", 503, GrpcStatus::Unavailable, FallbackTrigger::Upstream5xx}},
    {LocalReplyKind::UpstreamOverflow,
     {"upstream_overflow", 503, GrpcStatus::Unavailable, FallbackTrigger::Upstream5xx}},
    {LocalReplyKind::UpstreamRefusedStream,
     {"upstream_refused_stream", 503, GrpcStatus::Unavailable, FallbackTrigger::Upstream5xx}},
    {LocalReplyKind::UpstreamReset,
     {"upstream_reset", 502, GrpcStatus::Unavailable, FallbackTrigger::Upstream5xx}},
    {LocalReplyKind::UpstreamProtocolError,
     {"upstream_protocol_error", 502, GrpcStatus::Unavailable, FallbackTrigger::Upstream5xx}},
    {LocalReplyKind::Upstream5xx,
     {"upstream_5xx", 503, GrpcStatus::Unavailable, FallbackTrigger::Upstream5xx}},
    {LocalReplyKind::NoHealthyUpstream,
     {"no_healthy_upstream", 503, GrpcStatus::Unavailable, FallbackTrigger::Upstream5xx}},
    {LocalReplyKind::CircuitOpen,
     {"circuit_open", 503, GrpcStatus::Unavailable, FallbackTrigger::CircuitOpen}},
    {LocalReplyKind::RateLimited,
     {"rate_limited", 429, GrpcStatus::Unavailable, FallbackTrigger::RateLimited}},
    {LocalReplyKind::LoadShed, {"load_shed", 503, GrpcStatus::Unavailable, FallbackTrigger::Shed}},
    {LocalReplyKind::BulkheadFull,
     {"bulkhead_full", 503, GrpcStatus::Unavailable, FallbackTrigger::Shed}},
    {LocalReplyKind::BulkheadPartitionFull,
     {"bulkhead_partition_full", 503, GrpcStatus::Unavailable, FallbackTrigger::Shed}},
    {LocalReplyKind::BulkheadQueueTimeout,
     {"bulkhead_queue_timeout", 503, GrpcStatus::Unavailable, FallbackTrigger::Shed}},
    {LocalReplyKind::IdempotentReplay,
     {"idempotent_replay", 200, GrpcStatus::Ok, FallbackTrigger::None}},
    {LocalReplyKind::IdempotencyKeyInFlight,
     {"idempotency_key_in_flight", 409, GrpcStatus::Aborted, FallbackTrigger::None}},
    {LocalReplyKind::IdempotencyKeyMismatch,
     {"idempotency_key_mismatch", 422, GrpcStatus::InvalidArgument, FallbackTrigger::None}},
    {LocalReplyKind::IdempotencyStoreFull,
     {"idempotency_store_full", 503, GrpcStatus::Unavailable, FallbackTrigger::None}},
    {LocalReplyKind::IdempotencyKeyMissing,
     {"idempotency_key_missing", 400, GrpcStatus::InvalidArgument, FallbackTrigger::None}},
    {LocalReplyKind::IdempotencyKeyInvalid,
     {"idempotency_key_invalid", 400, GrpcStatus::InvalidArgument, FallbackTrigger::None}},
    {LocalReplyKind::IdempotencyBodyTooLarge,
     {"idempotency_body_too_large", 413, GrpcStatus::InvalidArgument, FallbackTrigger::None}},
    {LocalReplyKind::UpgradeNotAllowed,
     {"upgrade_not_allowed", 403, GrpcStatus::PermissionDenied, FallbackTrigger::None}},
    {LocalReplyKind::UpstreamTlsError,
     {"upstream_tls_error", 503, GrpcStatus::Unavailable, FallbackTrigger::Upstream5xx}},
    {LocalReplyKind::InvalidPath,
     {"invalid_path", 400, GrpcStatus::InvalidArgument, FallbackTrigger::None}},
    {LocalReplyKind::PathRedirect,
     {"path_redirect", 307, GrpcStatus::InvalidArgument, FallbackTrigger::None}},
    {LocalReplyKind::RateLimitUnavailable,
     {"rate_limit_unavailable", 503, GrpcStatus::Unavailable, FallbackTrigger::RateLimited}},
    {LocalReplyKind::IdempotencyStoreUnavailable,
     {"idempotency_store_unavailable", 503, GrpcStatus::Unavailable, FallbackTrigger::None}},
    {LocalReplyKind::OverloadReset,
     {"overload_reset", 503, GrpcStatus::ResourceExhausted, FallbackTrigger::None}},
    {LocalReplyKind::RequestBodyTooSlow,
     {"request_body_too_slow", 408, GrpcStatus::DeadlineExceeded, FallbackTrigger::None}},
}};

constexpr bool tableInKindOrder() {
  for (size_t i = 0; i < kTable.size(); ++i) {
    if (static_cast<size_t>(kTable[i].first) != i) {
      return false;
    }
  }
  return true;
}
static_assert(tableInKindOrder(), "kTable rows must follow LocalReplyKind's order");

}  // namespace

const LocalReplyInfo& localReplyInfo(LocalReplyKind kind) {
  return kTable[static_cast<size_t>(kind)].second;
}

}  // namespace bulwark::http
