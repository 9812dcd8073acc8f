#include "proxy/router/route.h"

#include <algorithm>
#include <atomic>

#include "common/ascii.h"

namespace bulwark::router {
namespace {

policies::Jitter toPolicy(config::Jitter j) {
  switch (j) {
    case config::Jitter::Full: return policies::Jitter::Full;
    case config::Jitter::Equal: return policies::Jitter::Equal;
    case config::Jitter::None: return policies::Jitter::None;
  }
  return policies::Jitter::Full;
}

policies::NonIdempotentPolicy toPolicy(config::NonIdempotentPolicy p) {
  switch (p) {
    case config::NonIdempotentPolicy::Never: return policies::NonIdempotentPolicy::Never;
    case config::NonIdempotentPolicy::WithIdempotencyKey:
      return policies::NonIdempotentPolicy::WithIdempotencyKey;
    case config::NonIdempotentPolicy::Always: return policies::NonIdempotentPolicy::Always;
  }
  return policies::NonIdempotentPolicy::Never;
}

// Retry budgets are per upstream (Linkerd/Finagle): every route to the same upstream with the same
// budget settings draws from one budget, across workers and across reloads.
std::shared_ptr<policies::RetryBudget> sharedBudget(ReloadableState& state,
                                                    const std::string& upstream,
                                                    const config::RetryBudgetSpec& spec) {
  const std::string key = "retry-budget/" + upstream + "|" + std::to_string(spec.percent) + "|" +
                          std::to_string(spec.min_retry_concurrency);
  return state.getOrCreate<policies::RetryBudget>(key, [&] {
    policies::RetryBudget::Options options;
    options.percent = spec.percent;
    // The reserve stays Linkerd's 10 retries/s (so a 100%-failing upstream sees at most
    // (1 + percent/100) x the client rate + 10/s); minRetryConcurrency bounds retries in flight
    // (Envoy's form) through the route's ConcurrentRetryLimit, and is also the reserve's burst:
    // that many retries may go at once on a quiet upstream.
    options.reserve_burst = spec.min_retry_concurrency;
    return std::make_shared<policies::RetryBudget>(options);
  });
}

// A process-wide number per route and upstream, filed in the reloadable state so a reload keeps
// it (and with it each worker's latency history) while the route keeps its name and upstream.
std::shared_ptr<uint32_t> sharedLatencySlot(ReloadableState& state, const std::string& route,
                                            const std::string& upstream) {
  return state.getOrCreate<uint32_t>("attempt-latency/" + route + "|" + upstream, [] {
    static std::atomic<uint32_t> next{0};
    return std::make_shared<uint32_t>(next.fetch_add(1));
  });
}

std::optional<Fallback> compileFallback(const std::optional<config::FallbackSpec>& spec) {
  if (!spec) {
    return std::nullopt;
  }
  Fallback compiled;
  for (const auto& name : spec->on) {
    if (auto trigger = config::fallbackTriggerFromName(name)) {
      compiled.triggers |= 1u << static_cast<uint32_t>(*trigger);
    }
  }
  compiled.status = spec->status;
  for (const auto& [name, value] : spec->headers) {
    std::string lower = name;
    http::toLowerInPlace(lower);
    if (lower != "content-length") {
      compiled.headers.add(lower, value);
    }
  }
  compiled.body = spec->body;
  compiled.grpc_status = grpcStatusFromName(spec->grpc_status).value_or(GrpcStatus::Unavailable);
  compiled.grpc_message = spec->grpc_message;
  return compiled;
}

RouteTimeouts compileTimeouts(const config::TimeoutsSpec& spec) {
  RouteTimeouts t;
  t.request = spec.request;
  t.idle = spec.idle;
  t.honor_grpc_deadline = spec.grpc.honor_deadline;
  t.grpc_deadline_offset = spec.grpc.deadline_offset;
  t.grpc_max_deadline = spec.grpc.max_deadline;
  return t;
}

}  // namespace

Result<std::shared_ptr<const Route>> Route::create(const config::RouteSpec& spec,
                                                   ReloadableState& state) {
  const config::RetriesSpec retries = spec.policies.retries.value_or(config::RetriesSpec{});
  auto retry_on = policies::RetryOn::parse(retries.retry_on, retries.retriable_status_codes);
  if (!retry_on) {
    return Status::error("routes " + spec.name + ": retryOn: " + retry_on.error());
  }
  std::shared_ptr<Route> route(new Route(spec));
  policies::RetryPolicy::Options options;
  options.retry_on = *retry_on;
  options.attempts = std::max<uint32_t>(retries.attempts, 1);
  options.backoff.base_interval = retries.backoff.base_interval;
  options.backoff.max_interval = retries.backoff.max_interval;
  options.backoff.jitter = toPolicy(retries.backoff.jitter);
  options.respect_retry_after = retries.respect_retry_after;
  options.max_retry_after = retries.max_retry_after;
  options.non_idempotent = toPolicy(retries.non_idempotent);
  route->retry_policy_ = std::make_shared<policies::RetryPolicy>(options);
  route->retry_budget_ = sharedBudget(state, spec.upstream, retries.budget);
  policies::ConcurrentRetryLimit::Options concurrency;
  concurrency.percent = retries.budget.percent;
  concurrency.min_retry_concurrency = retries.budget.min_retry_concurrency;
  route->retry_concurrency_ = std::make_shared<policies::ConcurrentRetryLimit>(concurrency);
  route->retry_settings_.per_try_timeout = retries.per_try_timeout;
  route->retry_settings_.ignore_previous_hosts = retries.retry_ignore_previous_hosts;
  route->retry_settings_.buffer_limit = retries.retry_buffer_limit;
  if (spec.policies.hedging) {
    policies::HedgePolicy::Options hedge;
    hedge.delay = spec.policies.hedging->delay;
    hedge.max_requests = spec.policies.hedging->max_requests;
    hedge.non_idempotent = toPolicy(retries.non_idempotent);
    hedge.adaptive = spec.policies.hedging->delay_auto;
    hedge.min_delay = spec.policies.hedging->min_delay;
    hedge.percentile = spec.policies.hedging->percentile / 100;
    route->hedge_policy_ = std::make_unique<policies::HedgePolicy>(hedge);
    if (hedge.adaptive) {
      route->latency_slot_holder_ = sharedLatencySlot(state, spec.name, spec.upstream);
      route->latency_slot_ = *route->latency_slot_holder_;
    }
  }
  return std::shared_ptr<const Route>(route);
}

Route::Route(const config::RouteSpec& spec)
    : name_(spec.name),
      match_(spec.match),
      timeouts_(compileTimeouts(spec.policies.timeouts.value_or(config::TimeoutsSpec{}))),
      upgrades_(spec.upgrades),
      fallback_(compileFallback(spec.policies.fallback)) {
  idempotency_key_header_ =
      spec.policies.idempotency ? spec.policies.idempotency->header : "idempotency-key";
  http::toLowerInPlace(idempotency_key_header_);
  using Kind = config::PathMatchSpec::Kind;
  if (match_.path.kind == Kind::Regex) {
    path_regex_ = std::make_unique<re2::RE2>(match_.path.value);
  }
  for (const auto& h : match_.headers) {
    if (h.kind == config::HeaderMatchSpec::Kind::Regex) {
      header_regexes_.push_back(std::make_unique<re2::RE2>(h.value));
    } else {
      header_regexes_.push_back(nullptr);
    }
  }
  if (match_.grpc) {
    grpc_prefix_ = "/" + match_.grpc->service + "/";
    if (!match_.grpc->method.empty()) {
      grpc_prefix_ += match_.grpc->method;
    }
  }
}

bool Route::matches(const http::RequestHeaders& req) const {
  const auto& m = match_;
  // The query string never takes part in path matching (Envoy's default).
  std::string_view path = req.path;
  if (auto q = path.find('?'); q != std::string_view::npos) {
    path = path.substr(0, q);
  }

  using Kind = config::PathMatchSpec::Kind;
  switch (m.path.kind) {
    case Kind::Any: break;
    case Kind::Prefix:
      if (path.substr(0, m.path.value.size()) != m.path.value) {
        return false;
      }
      break;
    case Kind::Exact:
      if (path != m.path.value) {
        return false;
      }
      break;
    case Kind::Regex:
      if (!re2::RE2::FullMatch(re2::StringPiece(path.data(), path.size()), *path_regex_)) {
        return false;
      }
      break;
  }
  if (!m.methods.empty() &&
      std::find(m.methods.begin(), m.methods.end(), req.method) == m.methods.end()) {
    return false;
  }
  if (!m.sni.empty() && std::none_of(m.sni.begin(), m.sni.end(), [&](const std::string& name) {
        return serverNameMatches(name, req.sni);
      })) {
    return false;
  }
  if (m.grpc) {
    if (!req.isGrpc()) {
      return false;
    }
    if (!match_.grpc->method.empty()) {
      if (path != grpc_prefix_) {
        return false;
      }
    } else if (path.substr(0, grpc_prefix_.size()) != grpc_prefix_) {
      return false;
    }
  }
  for (size_t i = 0; i < m.headers.size(); ++i) {
    const auto& hm = m.headers[i];
    auto value = hm.name == "host" || hm.name == ":authority"
                     ? std::optional<std::string_view>(req.authority)
                     : req.headers.get(hm.name);
    bool ok = false;
    using HK = config::HeaderMatchSpec::Kind;
    if (value) {
      switch (hm.kind) {
        case HK::Present: ok = true; break;
        case HK::Exact: ok = *value == hm.value; break;
        case HK::Prefix: ok = value->substr(0, hm.value.size()) == hm.value; break;
        case HK::Regex:
          ok = re2::RE2::FullMatch(re2::StringPiece(value->data(), value->size()),
                                   *header_regexes_[i]);
          break;
      }
    }
    if (ok == hm.invert) {
      return false;
    }
  }
  return true;
}

}  // namespace bulwark::router
