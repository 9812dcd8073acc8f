#include "filters/rate_limit/rate_limit_filter.h"

#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "proxy/stats/stats.h"

namespace bulwark::filters::rate_limit {

RateLimitState::RateLimitState(const config::RateLimitSpec& spec_in,
                               policies::RateLimitHeaderStyle style_in, std::string route_name_in,
                               prometheus::Counter& limited_in)
    : spec(spec_in),
      style(style_in),
      route_name(std::move(route_name_in)),
      limiter(policies::RateLimiter::Options{spec_in.requests_per_second, spec_in.burst, 10000}),
      limited(limited_in) {}

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
  const policies::RateLimitDecision decision =
      state_->limiter.tryAcquire(key, state_->clock.now(*callbacks_));
  if (decision.allowed) {
    allowed_ = decision;
    return http::FilterStatus::Continue;
  }
  state_->limited.Increment();
  http::LocalReply reply(http::LocalReplyKind::RateLimited);
  reply.headers.add("retry-after", retryAfterValue(decision.retry_after));
  if (callbacks_->isGrpc()) {
    reply.headers.add("grpc-retry-pushback-ms", pushbackMillisValue(decision.retry_after));
  }
  for (auto& [name, value] : policies::rateLimitHeaders(decision, state_->style, state_->route_name,
                                                        spec.requests_per_second)) {
    reply.headers.add(std::move(name), std::move(value));
  }
  callbacks_->sendLocalReply(std::move(reply));
  return http::FilterStatus::StopIteration;
}

void RateLimitFilter::onResponseHeaders(http::ResponseHeaders& headers, bool end_stream) {
  (void)end_stream;
  if (!allowed_ || state_->style == policies::RateLimitHeaderStyle::Off) {
    return;
  }
  for (auto& [name, value] : policies::rateLimitHeaders(
           *allowed_, state_->style, state_->route_name, state_->spec.requests_per_second)) {
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
    const std::string fingerprint =
        fmt::format("rate_limit:{}/{}/{}/{}/{}", spec.requests_per_second, spec.burst,
                    spec.key_header, spec.key_client_ip, spec.headers);
    prometheus::Counter& limited =
        counterFamily(ctx.stats().registry(), "bulwark_rate_limited_total",
                      "Requests answered 429 by a route rate limit")
            .Add({{"route", route.name}});
    auto state = ctx.sharedState<RateLimitState>(fingerprint, [&] {
      return std::make_shared<RateLimitState>(spec, *style, route.name, limited);
    });
    return http::FilterFactoryCb(
        [state]() -> http::HttpFilterPtr { return std::make_unique<RateLimitFilter>(state); });
  }
};

}  // namespace

http::FilterFactoryPtr makeFactory() { return std::make_unique<RateLimitFilterFactory>(); }

}  // namespace bulwark::filters::rate_limit
