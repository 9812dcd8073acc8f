#include "filters/rate_limit/rate_limit_filter.h"

#include <algorithm>
#include <cmath>
#include <string_view>
#include <utility>

#include <fmt/format.h>
#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include "proxy/stats/stats.h"

namespace bulwark::filters::rate_limit {

namespace {

uint32_t effectiveBurst(const config::RateLimitSpec& spec) {
  if (spec.burst > 0) {
    return spec.burst;
  }
  return std::max<uint32_t>(1, static_cast<uint32_t>(std::ceil(spec.requests_per_second)));
}

// The bucket of one instance: the whole limit, or with scope global and failureMode local its
// share while Redis is unavailable.
policies::RateLimiter::Options localOptions(const config::RateLimitSpec& spec) {
  if (spec.scope != "global") {
    return {spec.requests_per_second, spec.burst, 10000};
  }
  const double instances = std::max<uint32_t>(1, spec.expected_instances);
  return {spec.requests_per_second / instances,
          std::max<uint32_t>(1, static_cast<uint32_t>(std::ceil(effectiveBurst(spec) / instances))),
          10000};
}

// GCRA (the generic cell rate algorithm: a token bucket kept as one "theoretical arrival time")
// in one atomic script. Time is Redis' own clock, so instances with skewed clocks agree.
//   KEYS[1]  the bucket
//   ARGV[1]  emission interval in microseconds (1e6 / rate)
//   ARGV[2]  burst (capacity)
// Returns {allowed 0|1, remaining tokens, retry after us, reset after us (until full)}.
constexpr char kGcraScript[] = R"lua(
local emission = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local tolerance = emission * burst
local new_tat = tat + emission
local allow_at = new_tat - tolerance
if allow_at > now then
  return {0, 0, math.ceil(allow_at - now), math.ceil(tat - now)}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, math.floor((tolerance - (new_tat - now)) / emission), 0, math.ceil(new_tat - now)}
)lua";

}  // namespace

RateLimitState::RateLimitState(const config::RateLimitSpec& spec_in,
                               policies::RateLimitHeaderStyle style_in, std::string route_name_in,
                               prometheus::Counter& limited_in,
                               prometheus::Family<prometheus::Counter>& decisions_in,
                               prometheus::Counter* dry_run_limited_in)
    : spec(spec_in),
      route_name(std::move(route_name_in)),
      global(spec_in.scope == "global"),
      burst(effectiveBurst(spec_in)),
      headers(style_in, route_name, spec_in.requests_per_second, burst),
      limiter(localOptions(spec_in)),
      limited(limited_in),
      dry_run_limited(dry_run_limited_in) {
  for (size_t i = 0; i < kDecisionCount; ++i) {
    decisions[i] = &decisions_in.Add({{"route", route_name},
                                      {"scope", spec.scope},
                                      {"decision", std::string(kDecisionLabels[i])}});
  }
}

const redis::Script& RateLimitFilter::globalScript() {
  static const redis::Script script(kGcraScript);
  return script;
}

http::FilterStatus RateLimitFilter::onRequestHeaders(http::RequestHeaders& headers,
                                                     bool end_stream) {
  (void)end_stream;
  const config::RateLimitSpec& spec = state_->spec;
  std::string_view key;
  if (!spec.key_header.empty()) {
    key = headers.headers.get(spec.key_header).value_or(std::string_view());
  } else if (spec.key_client_ip) {
    key = peerIp(callbacks_->downstreamAddress());
  }
  if (callbacks_->decisions() != nullptr) {
    key_ = std::string(key);  // named in the decision record if the request is limited
  }
  if (state_->global) {
    return acquireGlobal(key);
  }
  return apply(state_->limiter.tryAcquire(key, state_->clock.now(*callbacks_)),
               RateLimitState::kAllowed, RateLimitState::kLimited);
}

http::FilterStatus RateLimitFilter::acquireGlobal(std::string_view key) {
  redis_ = callbacks_->redis();
  if (redis_ != nullptr) {
    // The route name keeps routes apart; instances of one deployment share the route's keys.
    pending_ = redis_->evalScript(
        "rate_limit", globalScript(), {fmt::format("bulwark:rl:{}:{}", state_->route_name, key)},
        {fmt::format("{:.3f}", 1e6 / state_->spec.requests_per_second),
         std::to_string(state_->burst)},
        [this](const redis::RedisClient::Reply& reply) { onGlobalReply(reply); });
  }
  if (pending_ == nullptr) {
    return applyFailureMode(key, false);
  }
  pending_key_ = std::string(key);
  return http::FilterStatus::StopIteration;
}

void RateLimitFilter::onGlobalReply(const redis::RedisClient::Reply& reply) {
  const redisReply* r = reply.reply;
  if (reply.result != redis::OpResult::Ok || reply.isError() || r == nullptr ||
      r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
    if (reply.isError()) {
      spdlog::warn("route {}: global rate limit script failed: {}", state_->route_name,
                   redis::replyString(r));
    }
    applyFailureMode(pending_key_, true);
    return;
  }
  policies::RateLimitDecision decision;
  decision.allowed = redis::replyInteger(redis::replyElement(r, 0)) == 1;
  decision.limit = state_->burst;
  decision.remaining = static_cast<uint32_t>(
      std::clamp<long long>(redis::replyInteger(redis::replyElement(r, 1)), 0, state_->burst));
  decision.retry_after =
      std::chrono::microseconds(std::max(0LL, redis::replyInteger(redis::replyElement(r, 2))));
  decision.reset_after =
      std::chrono::microseconds(std::max(0LL, redis::replyInteger(redis::replyElement(r, 3))));
  if (apply(decision, RateLimitState::kAllowed, RateLimitState::kLimited) ==
      http::FilterStatus::Continue) {
    callbacks_->continueRequest();
  }
}

http::FilterStatus RateLimitFilter::applyFailureMode(std::string_view key, bool deferred) {
  const std::string& mode = state_->spec.failure_mode;
  http::FilterStatus status = http::FilterStatus::Continue;
  if (mode == "deny") {
    state_->count(RateLimitState::kFailureDenied);
    http::LocalReply reply(http::LocalReplyKind::RateLimitUnavailable);
    reply.headers.add("retry-after", "1");
    callbacks_->sendLocalReply(std::move(reply));
    return http::FilterStatus::StopIteration;
  }
  if (mode == "local") {
    status = apply(state_->limiter.tryAcquire(key, state_->clock.now(*callbacks_)),
                   RateLimitState::kFallbackAllowed, RateLimitState::kFallbackLimited);
  } else {
    state_->count(RateLimitState::kFailureAllowed);
  }
  if (deferred && status == http::FilterStatus::Continue) {
    callbacks_->continueRequest();
  }
  return status;
}

http::FilterStatus RateLimitFilter::apply(const policies::RateLimitDecision& decision,
                                          RateLimitState::Decision allowed,
                                          RateLimitState::Decision limited) {
  if (decision.allowed) {
    state_->count(allowed);
    allowed_ = decision;
    return http::FilterStatus::Continue;
  }
  state_->count(limited);
  if (auto* decisions = callbacks_->decisions()) {
    decisions->add(
        "rate_limited",
        {{"key", key_},
         {"limit", fmt::format("{}/s", state_->spec.requests_per_second)},
         {"burst", std::to_string(state_->burst)},
         {"scope",
          limited == RateLimitState::kFallbackLimited ? "local_fallback" : state_->spec.scope},
         {"retry_after_ms",
          std::to_string(
              std::chrono::ceil<std::chrono::milliseconds>(decision.retry_after).count())}});
  }
  if (state_->dry_run_limited != nullptr) {
    recordDryRun(*callbacks_, *state_->dry_run_limited, "rate_limited");
    return http::FilterStatus::Continue;
  }
  state_->limited.Increment();
  http::LocalReply reply(http::LocalReplyKind::RateLimited);
  reply.headers.add("retry-after", retryAfterValue(decision.retry_after));
  if (callbacks_->isGrpc()) {
    reply.headers.add("grpc-retry-pushback-ms", pushbackMillisValue(decision.retry_after));
  }
  for (auto& [name, value] : state_->headers.render(decision)) {
    reply.headers.add(std::string(name), std::move(value));
  }
  callbacks_->sendLocalReply(std::move(reply));
  return http::FilterStatus::StopIteration;
}

void RateLimitFilter::onResponseHeaders(http::ResponseHeaders& headers, bool end_stream) {
  (void)end_stream;
  if (!allowed_ || state_->headers.style() == policies::RateLimitHeaderStyle::Off) {
    return;
  }
  for (auto& [name, value] : state_->headers.render(*allowed_)) {
    headers.headers.set(name, std::move(value));
  }
}

namespace {

class RateLimitFilterFactory : public http::FilterFactory {
public:
  std::string_view name() const override { return "rate_limit"; }

  bool enabledFor(const config::RouteSpec& route) const override {
    return route.policies.rate_limit.has_value();
  }

  Result<http::FilterFactoryCb> create(http::FactoryContext& ctx) override {
    const config::RouteSpec& route = ctx.route();
    const config::RateLimitSpec& spec = *route.policies.rate_limit;
    if (!(spec.requests_per_second > 0)) {
      return Status::error("rateLimit.requestsPerSecond must be greater than 0");
    }
    const auto style = policies::parseRateLimitHeaderStyle(spec.headers);
    if (!style) {
      return Status::error(fmt::format("rateLimit.headers: unknown style \"{}\"", spec.headers));
    }
    // Everything the buckets depend on; other changes keep the buckets (and their tokens).
    const std::string fingerprint = fmt::format(
        "rate_limit:{}/{}/{}/{}/{}/{}/{}/{}", spec.requests_per_second, spec.burst, spec.key_header,
        spec.key_client_ip, spec.headers, spec.scope, spec.failure_mode, spec.expected_instances);
    prometheus::Counter& limited =
        counterFamily(ctx.stats().registry(), "bulwark_rate_limited_total",
                      "Requests answered 429 by a route rate limit")
            .Add({{"route", route.name}});
    auto& decisions = counterFamily(ctx.stats().registry(), "bulwark_rate_limit_decisions_total",
                                    "Rate limit decisions by route, scope (local or global) and "
                                    "decision (failure_* and fallback_*: Redis was unavailable)");
    prometheus::Counter* dry_run =
        spec.mode == "dryRun"
            ? &dryRunCounter(ctx.stats().registry(), route.name, "rate_limit", "rate_limited")
            : nullptr;
    auto state = ctx.sharedState<RateLimitState>(fingerprint, [&] {
      return std::make_shared<RateLimitState>(spec, *style, route.name, limited, decisions,
                                              dry_run);
    });
    return http::FilterFactoryCb(
        [state]() -> http::HttpFilterPtr { return std::make_unique<RateLimitFilter>(state); });
  }
};

}  // namespace

http::FilterFactoryPtr makeFactory() { return std::make_unique<RateLimitFilterFactory>(); }

}  // namespace bulwark::filters::rate_limit
