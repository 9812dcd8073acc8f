#pragma once

// Route `idempotency` (draft-ietf-httpapi-idempotency-key-header): requests of the
// `requiredFor` methods without the key header are refused when `onMissing: reject`; with
// `dedupe.enabled`, the first request per key is forwarded and its completed response stored,
// a repeat gets the stored response replayed (x-bulwark-idempotent-replay: true), 409 while the
// first is still in flight, 422 when its fingerprint (method, path, body SHA-256) differs.
// `dedupe.store: redis` keeps the entries in the shared-state Redis instead of this process, so
// a retry that lands on another bulwark instance is deduplicated too; an in-flight entry there
// is a lease (`dedupe.lease`) that frees the key if its instance dies before completing it.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include "filters/filter_support.h"
#include "policies/idempotency/idempotency_store.h"
#include "proxy/config/spec.h"
#include "proxy/http/filter.h"
#include "proxy/redis/redis_client.h"

namespace bulwark::filters::idempotency {

/** Marks a replayed stored response (value "true"). */
inline constexpr std::string_view kReplayHeader = "x-bulwark-idempotent-replay";

/** Longest accepted key value; longer keys get 400 (the draft leaves the bound to servers). */
inline constexpr size_t kMaxKeyLength = 255;

/**
 * A route's block as the filter reads it. Rebuilt on every config load. Thread: any (immutable).
 */
struct IdempotencySettings {
  IdempotencySettings(const config::IdempotencySpec& spec, std::string route_name);

  const config::IdempotencySpec spec;
  const std::string route_name;
  const bool redis_store;
  const std::string header;  // lower case
  const bool fingerprint_method;
  const bool fingerprint_path;
  const bool fingerprint_body;
};
using IdempotencySettingsConstSharedPtr = std::shared_ptr<const IdempotencySettings>;

/**
 * One route's dedupe store and metric handles, shared by every worker and kept across reloads
 * while what the stored entries depend on is unchanged (FactoryContext::sharedState), so a reload
 * neither forgets stored answers nor frees keys that are in flight.
 * Thread: any (the store locks internally; the rest is immutable after construction).
 */
struct IdempotencyState {
  IdempotencyState(const config::IdempotencySpec& spec,
                   prometheus::Family<prometheus::Counter>& results,
                   prometheus::Family<prometheus::Counter>& completions, prometheus::Gauge& entries,
                   const std::string& route_name);

  /** @return the counter bulwark_idempotency_results_total{route, result}. */
  prometheus::Counter& result(std::string_view label) const {
    return *results_.at(std::string(label));
  }
  /** @return the counter bulwark_idempotency_completions_total{route, result}. */
  prometheus::Counter& completion(std::string_view label) const {
    return *completions_.at(std::string(label));
  }
  /** Publishes the store's size (bulwark_idempotency_entries{route}). */
  void updateEntries() const { entries_gauge_.Set(static_cast<double>(store.size())); }

  policies::idempotency::IdempotencyStore store;
  FilterClock clock;

private:
  std::map<std::string, prometheus::Counter*> results_;
  std::map<std::string, prometheus::Counter*> completions_;
  prometheus::Gauge& entries_gauge_;
};
using IdempotencyStateSharedPtr = std::shared_ptr<IdempotencyState>;

/**
 * Per request: checks the key, buffers the body for the fingerprint (StopIterationAndBuffer,
 * bounded by dedupe.maxBodyBytes: beyond it 413, like Envoy's buffer filter — a keyed request
 * that cannot be deduplicated is refused rather than risk running twice), claims the key, and
 * captures the response on its way downstream to store it when the stream completes. A
 * response that is not complete (reset, local reply such as a 504), has trailers, or exceeds
 * maxBodyBytes is not stored: the key is released so the client's retry can proceed.
 * gRPC requests pass through (their outcome lives in trailers; not deduplicated).
 * Thread: owning worker; one instance per request.
 */
class IdempotencyFilter : public http::HttpFilter {
public:
  IdempotencyFilter(IdempotencySettingsConstSharedPtr settings, IdempotencyStateSharedPtr state)
      : settings_(std::move(settings)), state_(std::move(state)) {}
  ~IdempotencyFilter() override;

  // http::HttpFilter
  http::FilterStatus onRequestHeaders(http::RequestHeaders& headers, bool end_stream) override;
  http::FilterStatus onRequestData(evbuffer* buffered, bool end_stream) override;
  void onResponseHeaders(http::ResponseHeaders& headers, bool end_stream) override;
  void onResponseData(evbuffer* data, bool end_stream) override;
  void onResponseTrailers(const http::HeaderMap& trailers) override;
  void onStreamComplete(const http::StreamInfo& info) override;

  /** The Redis store's scripts (exposed for their unit test). */
  static const redis::Script& redisBeginScript();
  static const redis::Script& redisCompleteScript();
  static const redis::Script& redisReleaseScript();

private:
  /** Claims the key with the fingerprint of what was read; answers unless it may proceed. */
  http::FilterStatus begin(std::string_view body_sha256_hex);
  http::FilterStatus beginInRedis(const std::string& fingerprint);
  void onRedisBegin(const redis::RedisClient::Reply& reply);
  /** Answers for a key that may not proceed (replay, 409, 422, 503). */
  void answer(policies::idempotency::BeginOutcome outcome,
              const policies::idempotency::StoredResponse* response);
  void finishInRedis(const http::StreamInfo& info);
  /** Frees the key in Redis if it is still this request's (fire and forget). */
  void releaseInRedis();
  void reject(http::LocalReplyKind kind, std::string_view title, std::string_view detail,
              bool retry_after = false);

  IdempotencySettingsConstSharedPtr settings_;
  IdempotencyStateSharedPtr state_;
  std::string key_;
  std::string method_;
  std::string path_;
  std::optional<policies::idempotency::IdempotencyToken> token_;  // set while the key is ours
  policies::idempotency::StoredResponse response_;                // captured on the way down
  bool response_complete_ = false;
  bool response_storable_ = true;  // false: trailers or too large
  // dedupe.store redis: the key in Redis and this request's lease token while it holds it.
  redis::RedisClientSharedPtr redis_;
  redis::RedisClient::HandlePtr pending_;
  std::string redis_key_;
  std::string redis_token_;
};

/** The factory for filters/builtin.cc: enabled by a route's `idempotency` block. */
http::FilterFactoryPtr makeFactory();

/** @return lower-case hex SHA-256 of `buffer`'s bytes (read in place). Thread: any. */
std::string sha256Hex(evbuffer* buffer);

}  // namespace bulwark::filters::idempotency
