#include "filters/idempotency/idempotency_filter.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <utility>
#include <vector>

#include <event2/buffer.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "proxy/network/buffer.h"
#include "proxy/stats/stats.h"

namespace bulwark::filters::idempotency {
namespace {

using policies::idempotency::BeginOutcome;
using policies::idempotency::CompleteOutcome;

constexpr std::array<std::string_view, 9> kResultLabels = {
    "proceed",     "replayed",    "conflict",       "mismatch",         "store_full",
    "missing_key", "invalid_key", "body_too_large", "store_unavailable"};
constexpr std::array<std::string_view, 5> kCompletionLabels = {"stored", "released", "too_large",
                                                               "abandoned", "stale"};

bool contains(const std::vector<std::string>& list, std::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Headers that describe one connection or one exchange, not the stored answer: a replay gets its
// own framing (content-length) and its own x-request-id.
bool storedHeader(std::string_view name) {
  static constexpr std::array<std::string_view, 9> kSkip = {
      "connection",     "keep-alive",   "proxy-connection", "transfer-encoding", "upgrade", "te",
      "content-length", "x-request-id", "trailer"};
  return std::find(kSkip.begin(), kSkip.end(), name) == kSkip.end();
}

// The Redis store keeps one hash per key: s (state: f in flight, d done), fp (fingerprint),
// tok (the lease token of the instance holding it in flight), st/hd/bd (the stored response).
// Each step is one script, so two instances can never both claim a key.
//   KEYS[1] the key; ARGV[1] fingerprint, ARGV[2] lease token, ARGV[3] lease in ms.
constexpr char kBeginScript[] = R"lua(
local v = redis.call('HMGET', KEYS[1], 's', 'fp', 'st', 'hd', 'bd')
if not v[1] then
  redis.call('HSET', KEYS[1], 's', 'f', 'fp', ARGV[1], 'tok', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {'proceed'}
end
if v[2] ~= ARGV[1] then return {'mismatch'} end
if v[1] == 'f' then return {'conflict'} end
return {'replay', v[3], v[4], v[5]}
)lua";
//   ARGV[1] lease token, ARGV[2] status, ARGV[3] headers, ARGV[4] body, ARGV[5] ttl in ms.
constexpr char kCompleteScript[] = R"lua(
if redis.call('HGET', KEYS[1], 'tok') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 's', 'd', 'st', ARGV[2], 'hd', ARGV[3], 'bd', ARGV[4])
redis.call('HDEL', KEYS[1], 'tok')
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
)lua";
//   ARGV[1] lease token.
constexpr char kReleaseScript[] = R"lua(
if redis.call('HGET', KEYS[1], 'tok') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
)lua";

// Stored headers as name NUL value NUL ...: neither may contain a NUL.
std::string encodeHeaders(const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string out;
  for (const auto& [name, value] : headers) {
    out.append(name).push_back('\0');
    out.append(value).push_back('\0');
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> decodeHeaders(std::string_view blob) {
  std::vector<std::pair<std::string, std::string>> headers;
  while (!blob.empty()) {
    const size_t name_end = blob.find('\0');
    if (name_end == std::string_view::npos) {
      break;
    }
    const size_t value_end = blob.find('\0', name_end + 1);
    if (value_end == std::string_view::npos) {
      break;
    }
    headers.emplace_back(std::string(blob.substr(0, name_end)),
                         std::string(blob.substr(name_end + 1, value_end - name_end - 1)));
    blob.remove_prefix(value_end + 1);
  }
  return headers;
}

std::string randomToken() {
  std::array<unsigned char, 16> bytes{};
  RAND_bytes(bytes.data(), static_cast<int>(bytes.size()));
  std::string hex;
  for (unsigned char b : bytes) {
    fmt::format_to(std::back_inserter(hex), "{:02x}", b);
  }
  return hex;
}

int64_t millis(std::chrono::milliseconds d) { return std::max<int64_t>(1, d.count()); }

policies::idempotency::IdempotencyConfig storeConfig(const config::IdempotencySpec& spec) {
  policies::idempotency::IdempotencyConfig c;
  c.ttl = spec.dedupe_ttl;
  c.max_entries = spec.dedupe_max_entries;
  return c;
}

}  // namespace

std::string sha256Hex(evbuffer* buffer) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  const int n = evbuffer_peek(buffer, -1, nullptr, nullptr, 0);
  if (n > 0) {
    std::vector<evbuffer_iovec> chunks(static_cast<size_t>(n));
    evbuffer_peek(buffer, -1, nullptr, chunks.data(), n);
    for (const auto& chunk : chunks) {
      EVP_DigestUpdate(ctx, chunk.iov_base, chunk.iov_len);
    }
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, digest.data(), &len);
  EVP_MD_CTX_free(ctx);
  std::string hex;
  hex.reserve(size_t{len} * 2);
  for (unsigned int i = 0; i < len; ++i) {
    fmt::format_to(std::back_inserter(hex), "{:02x}", digest[i]);
  }
  return hex;
}

IdempotencySettings::IdempotencySettings(const config::IdempotencySpec& spec_in,
                                         std::string route_name_in)
    : spec(spec_in),
      route_name(std::move(route_name_in)),
      redis_store(spec_in.dedupe_store == "redis"),
      header(lower(spec_in.header)),
      fingerprint_method(contains(spec_in.dedupe_fingerprint, "method")),
      fingerprint_path(contains(spec_in.dedupe_fingerprint, "path")),
      fingerprint_body(contains(spec_in.dedupe_fingerprint, "bodySha256")) {}

IdempotencyState::IdempotencyState(const config::IdempotencySpec& spec_in,
                                   prometheus::Family<prometheus::Counter>& results,
                                   prometheus::Family<prometheus::Counter>& completions,
                                   prometheus::Gauge& entries, const std::string& route_name)
    : store(storeConfig(spec_in)), entries_gauge_(entries) {
  for (auto label : kResultLabels) {
    results_[std::string(label)] =
        &results.Add({{"route", route_name}, {"result", std::string(label)}});
  }
  for (auto label : kCompletionLabels) {
    completions_[std::string(label)] =
        &completions.Add({{"route", route_name}, {"result", std::string(label)}});
  }
}

const redis::Script& IdempotencyFilter::redisBeginScript() {
  static const redis::Script script(kBeginScript);
  return script;
}
const redis::Script& IdempotencyFilter::redisCompleteScript() {
  static const redis::Script script(kCompleteScript);
  return script;
}
const redis::Script& IdempotencyFilter::redisReleaseScript() {
  static const redis::Script script(kReleaseScript);
  return script;
}

IdempotencyFilter::~IdempotencyFilter() {
  // A stream destroyed without completing (connection torn down) must not block its key until
  // the in-flight TTL.
  if (!redis_token_.empty()) {
    releaseInRedis();
    state_->completion("abandoned").Increment();
  }
  if (token_) {
    state_->store.abandon(*token_);
    state_->completion("abandoned").Increment();
    state_->updateEntries();
  }
}

void IdempotencyFilter::reject(http::LocalReplyKind kind, std::string_view title,
                               std::string_view detail, bool retry_after) {
  http::LocalReply reply(kind);
  const uint32_t status = reply.httpStatus();
  reply.verbatim = true;
  reply.headers.add("content-type", "application/problem+json");
  reply.headers.add("x-bulwark-reason", std::string(reply.reason()));
  if (retry_after) {
    reply.headers.add("retry-after", "1");
  }
  // RFC 9457 problem details; every string here is a constant (no request data is echoed).
  reply.body = fmt::format(R"({{"type":"about:blank","title":"{}","status":{},"detail":"{}"}})",
                           title, status, detail);
  callbacks_->sendLocalReply(std::move(reply));
}

http::FilterStatus IdempotencyFilter::onRequestHeaders(http::RequestHeaders& headers,
                                                       bool end_stream) {
  const config::IdempotencySpec& spec = settings_->spec;
  if (callbacks_->isGrpc() || !contains(spec.required_for, headers.method)) {
    return http::FilterStatus::Continue;
  }
  auto key = headers.headers.get(settings_->header);
  if (!key) {
    if (spec.on_missing != "reject") {
      return http::FilterStatus::Continue;
    }
    state_->result("missing_key").Increment();
    reject(http::LocalReplyKind::IdempotencyKeyMissing, "Idempotency-Key is missing",
           "This operation requires an Idempotency-Key header.");
    return http::FilterStatus::StopIteration;
  }
  if (!spec.dedupe_enabled) {
    return http::FilterStatus::Continue;
  }
  if (key->empty() || key->size() > kMaxKeyLength) {
    state_->result("invalid_key").Increment();
    reject(http::LocalReplyKind::IdempotencyKeyInvalid, "Idempotency-Key is invalid",
           "The Idempotency-Key header must be 1 to 255 characters.");
    return http::FilterStatus::StopIteration;
  }
  key_ = std::string(*key);
  method_ = headers.method;
  path_ = headers.path;
  if (!settings_->fingerprint_body) {
    return begin("");
  }
  if (end_stream) {
    return begin(sha256Hex(network::emptyBuffer()));
  }
  return http::FilterStatus::StopIterationAndBuffer;
}

http::FilterStatus IdempotencyFilter::onRequestData(evbuffer* buffered, bool end_stream) {
  if (evbuffer_get_length(buffered) > settings_->spec.dedupe_max_body_bytes) {
    state_->result("body_too_large").Increment();
    reject(http::LocalReplyKind::IdempotencyBodyTooLarge,
           "Request body too large for Idempotency-Key deduplication",
           "The body exceeds the route's idempotency.dedupe.maxBodyBytes.");
    return http::FilterStatus::StopIteration;
  }
  if (!end_stream) {
    return http::FilterStatus::StopIterationAndBuffer;
  }
  return begin(sha256Hex(buffered));
}

http::FilterStatus IdempotencyFilter::begin(std::string_view body_sha256_hex) {
  // Only the configured parts; newline-separated so that no two part lists collide.
  std::string fingerprint;
  if (settings_->fingerprint_method) {
    fingerprint += "method:" + method_ + "\n";
  }
  if (settings_->fingerprint_path) {
    fingerprint += "path:" + path_ + "\n";
  }
  if (settings_->fingerprint_body) {
    fingerprint += fmt::format("body:{}\n", body_sha256_hex);
  }
  if (settings_->redis_store) {
    return beginInRedis(fingerprint);
  }
  auto result = state_->store.begin(key_, fingerprint, state_->clock.now(*callbacks_));
  state_->result(policies::idempotency::beginOutcomeLabel(result.outcome)).Increment();
  if (result.outcome == BeginOutcome::Proceed) {
    token_ = std::move(result.token);
    state_->updateEntries();
    return http::FilterStatus::Continue;
  }
  answer(result.outcome, result.response.get());
  return http::FilterStatus::StopIteration;
}

http::FilterStatus IdempotencyFilter::beginInRedis(const std::string& fingerprint) {
  redis_ = callbacks_->redis();
  redis_key_ = fmt::format("bulwark:idem:{}:{}", settings_->route_name, key_);
  // Set before the answer: a stream torn down while the claim is out still releases the key if
  // the claim succeeded (the release script only deletes an entry holding this token).
  redis_token_ = randomToken();
  if (redis_ != nullptr) {
    pending_ = redis_->evalScript(
        "idempotency_begin", redisBeginScript(), {redis_key_},
        {fingerprint, redis_token_, std::to_string(millis(settings_->spec.dedupe_lease))},
        [this](const redis::RedisClient::Reply& reply) { onRedisBegin(reply); });
  }
  if (pending_ == nullptr) {
    redis_token_.clear();
    // Not even sent: decide now, without waiting.
    state_->result("store_unavailable").Increment();
    if (settings_->spec.dedupe_failure_mode == "allow") {
      return http::FilterStatus::Continue;
    }
    reject(http::LocalReplyKind::IdempotencyStoreUnavailable, "Idempotency store unavailable",
           "The shared Idempotency-Key store cannot be reached; retry shortly.", true);
    return http::FilterStatus::StopIteration;
  }
  return http::FilterStatus::StopIteration;
}

void IdempotencyFilter::onRedisBegin(const redis::RedisClient::Reply& reply) {
  const std::string_view verdict = redis::replyString(redis::replyElement(reply.reply, 0));
  if (reply.result == redis::OpResult::Ok && verdict != "proceed") {
    redis_token_.clear();  // the key is someone else's; without an answer it may be ours
  }
  if (reply.result != redis::OpResult::Ok || reply.isError() || verdict.empty()) {
    state_->result("store_unavailable").Increment();
    if (settings_->spec.dedupe_failure_mode == "allow") {
      callbacks_->continueRequest();
      return;
    }
    reject(http::LocalReplyKind::IdempotencyStoreUnavailable, "Idempotency store unavailable",
           "The shared Idempotency-Key store cannot be reached; retry shortly.", true);
    return;
  }
  if (verdict == "proceed") {
    state_->result("proceed").Increment();
    callbacks_->continueRequest();
    return;
  }
  if (verdict == "replay") {
    policies::idempotency::StoredResponse response;
    const std::string_view status = redis::replyString(redis::replyElement(reply.reply, 1));
    uint32_t code = 0;
    std::from_chars(status.data(), status.data() + status.size(), code);
    response.status = code;
    response.headers = decodeHeaders(redis::replyString(redis::replyElement(reply.reply, 2)));
    response.body = std::string(redis::replyString(redis::replyElement(reply.reply, 3)));
    state_->result("replayed").Increment();
    answer(BeginOutcome::Replay, &response);
    return;
  }
  const BeginOutcome outcome =
      verdict == "conflict" ? BeginOutcome::Conflict : BeginOutcome::Mismatch;
  state_->result(policies::idempotency::beginOutcomeLabel(outcome)).Increment();
  answer(outcome, nullptr);
}

void IdempotencyFilter::answer(BeginOutcome outcome,
                               const policies::idempotency::StoredResponse* response) {
  switch (outcome) {
    case BeginOutcome::Proceed: return;
    case BeginOutcome::Replay: {
      http::LocalReply reply(http::LocalReplyKind::IdempotentReplay);
      reply.status = response->status;
      reply.verbatim = true;
      for (const auto& [name, value] : response->headers) {
        reply.headers.add(name, value);
      }
      reply.headers.add(std::string(kReplayHeader), "true");
      reply.body = response->body;
      callbacks_->sendLocalReply(std::move(reply));
      return;
    }
    case BeginOutcome::Conflict:
      reject(http::LocalReplyKind::IdempotencyKeyInFlight,
             "A request with this Idempotency-Key is being processed",
             "Retry after the first request completes.", true);
      return;
    case BeginOutcome::Mismatch:
      reject(http::LocalReplyKind::IdempotencyKeyMismatch,
             "Idempotency-Key reused with a different request",
             "The key was used for a request with another method, path or body.");
      return;
    case BeginOutcome::StoreFull:
      reject(http::LocalReplyKind::IdempotencyStoreFull, "Idempotency store full",
             "Every stored key is in flight; retry shortly.", true);
      return;
  }
}

void IdempotencyFilter::onResponseHeaders(http::ResponseHeaders& headers, bool end_stream) {
  if (!token_ && redis_token_.empty()) {
    return;
  }
  response_.status = headers.status;
  response_.headers.clear();
  for (const auto& [name, value] : headers.headers.entries()) {
    if (storedHeader(name)) {
      response_.headers.emplace_back(name, value);
    }
  }
  if (end_stream) {
    response_complete_ = true;
  }
}

void IdempotencyFilter::onResponseData(evbuffer* data, bool end_stream) {
  if (!token_ && redis_token_.empty()) {
    return;
  }
  const size_t len = evbuffer_get_length(data);
  if (response_storable_) {
    if (response_.body.size() + len > settings_->spec.dedupe_max_body_bytes) {
      response_storable_ = false;
      response_.body.clear();
      response_.body.shrink_to_fit();
    } else {
      const size_t old = response_.body.size();
      response_.body.resize(old + len);
      evbuffer_copyout(data, response_.body.data() + old, len);
    }
  }
  if (end_stream) {
    response_complete_ = true;
  }
}

void IdempotencyFilter::onResponseTrailers(const http::HeaderMap& trailers) {
  (void)trailers;
  if (!token_ && redis_token_.empty()) {
    return;
  }
  // A replay could not reproduce trailers faithfully (they are not part of StoredResponse).
  response_storable_ = false;
  response_complete_ = true;
}

void IdempotencyFilter::onStreamComplete(const http::StreamInfo& info) {
  if (!redis_token_.empty()) {
    finishInRedis(info);
    return;
  }
  if (!token_) {
    return;
  }
  auto token = std::move(*token_);
  token_.reset();
  if (!response_complete_ || info.local_reply) {
    state_->store.abandon(token);
    state_->completion("abandoned").Increment();
  } else if (!response_storable_) {
    state_->store.abandon(token);
    state_->completion("too_large").Increment();
  } else {
    switch (state_->store.complete(token, std::move(response_), state_->clock.now(*callbacks_))) {
      case CompleteOutcome::Stored: state_->completion("stored").Increment(); break;
      case CompleteOutcome::Released: state_->completion("released").Increment(); break;
      case CompleteOutcome::Stale: state_->completion("stale").Increment(); break;
    }
  }
  state_->updateEntries();
}

void IdempotencyFilter::finishInRedis(const http::StreamInfo& info) {
  std::string_view label;
  if (!response_complete_ || info.local_reply) {
    label = "abandoned";
  } else if (!response_storable_) {
    label = "too_large";
  } else if (!policies::idempotency::IdempotencyStore::isStorable(response_.status)) {
    label = "released";
  }
  if (!label.empty()) {
    releaseInRedis();
  } else {
    label = "stored";
    // Fire and forget: the response is on its way; a lost completion only means the lease
    // frees the key later instead of a replay.
    redis_->evalScript(
        "idempotency_complete", redisCompleteScript(), {redis_key_},
        {redis_token_, std::to_string(response_.status), encodeHeaders(response_.headers),
         response_.body, std::to_string(millis(settings_->spec.dedupe_ttl))},
        nullptr);
    redis_token_.clear();
  }
  state_->completion(label).Increment();
}

void IdempotencyFilter::releaseInRedis() {
  if (redis_ != nullptr) {
    redis_->evalScript("idempotency_release", redisReleaseScript(), {redis_key_}, {redis_token_},
                       nullptr);
  }
  redis_token_.clear();
}

namespace {

class IdempotencyFilterFactory : public http::FilterFactory {
public:
  std::string_view name() const override { return "idempotency"; }

  bool enabledFor(const config::RouteSpec& route) const override {
    return route.policies.idempotency.has_value();
  }

  Result<http::FilterFactoryCb> create(http::FactoryContext& ctx) override {
    const config::RouteSpec& route = ctx.route();
    const config::IdempotencySpec& spec = *route.policies.idempotency;
    if (spec.header.empty()) {
      return Status::error("idempotency.header must not be empty");
    }
    // What stored entries depend on (the key header, the fingerprint parts, the bounds): other
    // changes (onMissing, requiredFor) keep the store and its in-flight keys across a reload.
    const std::string fingerprint =
        fmt::format("idempotency:{}/{}/{}/{}/{}/{}", lower(spec.header), spec.dedupe_ttl.count(),
                    spec.dedupe_max_entries, fmt::join(spec.dedupe_fingerprint, ","),
                    spec.dedupe_max_body_bytes, spec.dedupe_store);
    auto& results =
        counterFamily(ctx.stats().registry(), "bulwark_idempotency_results_total",
                      "Idempotency-Key decisions by result (proceed, replayed, conflict, ...)");
    auto& completions =
        counterFamily(ctx.stats().registry(), "bulwark_idempotency_completions_total",
                      "What happened to claimed Idempotency-Keys when their request ended");
    auto& entries =
        gaugeFamily(ctx.stats().registry(), "bulwark_idempotency_entries",
                    "Idempotency-Keys held by the route's dedupe store (in flight and stored)")
            .Add({{"route", route.name}});
    auto state = ctx.sharedState<IdempotencyState>(fingerprint, [&] {
      return std::make_shared<IdempotencyState>(spec, results, completions, entries, route.name);
    });
    auto settings = std::make_shared<const IdempotencySettings>(spec, route.name);
    return http::FilterFactoryCb([settings, state]() -> http::HttpFilterPtr {
      return std::make_unique<IdempotencyFilter>(settings, state);
    });
  }
};

}  // namespace

http::FilterFactoryPtr makeFactory() { return std::make_unique<IdempotencyFilterFactory>(); }

}  // namespace bulwark::filters::idempotency
