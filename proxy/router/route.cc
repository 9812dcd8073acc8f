#include "proxy/router/route.h"

#include <algorithm>
#include <map>
#include <mutex>

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
// NOTE: the registry only grows by distinct (upstream, percent, minRetryConcurrency) keys, which
// come from config files, so it stays small.
std::shared_ptr<policies::RetryBudget> sharedBudget(const std::string& upstream,
                                                    const config::RetryBudgetSpec& spec) {
  static std::mutex mutex;
  static std::map<std::string, std::shared_ptr<policies::RetryBudget>> budgets;
  std::string key = upstream + "|" + std::to_string(spec.percent) + "|" +
                    std::to_string(spec.min_retry_concurrency);
  std::lock_guard<std::mutex> lock(mutex);
  auto& slot = budgets[key];
  if (!slot) {
    policies::RetryBudget::Options options;
    options.percent = spec.percent;
    // The reserve stays Linkerd's 10 retries/s (so a 100%-failing upstream sees at most
    // (1 + percent/100) x the client rate + 10/s); minRetryConcurrency bounds retries in flight
    // (Envoy's form) through the route's ConcurrentRetryLimit, and is also the reserve's burst:
    // that many retries may go at once on a quiet upstream.
    options.reserve_burst = spec.min_retry_concurrency;
    slot = std::make_shared<policies::RetryBudget>(options);
  }
  return slot;
}

}  // namespace

Result<std::shared_ptr<const Route>> Route::create(const config::RouteSpec& spec) {
  auto route = std::make_shared<Route>(spec);
  auto retry_on =
      policies::RetryOn::parse(route->retries_.retry_on, route->retries_.retriable_status_codes);
  if (!retry_on) {
    return Status::error("routes " + spec.name + ": retryOn: " + retry_on.error());
  }
  policies::RetryPolicy::Options options;
  options.retry_on = *retry_on;
  options.attempts = std::max<uint32_t>(route->retries_.attempts, 1);
  options.backoff.base_interval = route->retries_.backoff.base_interval;
  options.backoff.max_interval = route->retries_.backoff.max_interval;
  options.backoff.jitter = toPolicy(route->retries_.backoff.jitter);
  options.respect_retry_after = route->retries_.respect_retry_after;
  options.max_retry_after = route->retries_.max_retry_after;
  options.non_idempotent = toPolicy(route->retries_.non_idempotent);
  route->retry_policy_ = std::make_shared<policies::RetryPolicy>(options);
  route->retry_budget_ = sharedBudget(spec.upstream, route->retries_.budget);
  policies::ConcurrentRetryLimit::Options concurrency;
  concurrency.percent = route->retries_.budget.percent;
  concurrency.min_retry_concurrency = route->retries_.budget.min_retry_concurrency;
  route->retry_concurrency_ = std::make_shared<policies::ConcurrentRetryLimit>(concurrency);
  if (spec.policies.hedging) {
    policies::HedgePolicy::Options hedge;
    hedge.delay = spec.policies.hedging->delay;
    hedge.max_requests = spec.policies.hedging->max_requests;
    route->hedge_policy_ = std::make_unique<policies::HedgePolicy>(hedge);
  }
  return std::shared_ptr<const Route>(route);
}

Route::Route(const config::RouteSpec& spec)
    : spec_(spec), retries_(spec.policies.retries.value_or(config::RetriesSpec{})) {
  using Kind = config::PathMatchSpec::Kind;
  if (spec_.match.path.kind == Kind::Regex) {
    path_regex_ = std::make_unique<re2::RE2>(spec_.match.path.value);
  }
  for (const auto& h : spec_.match.headers) {
    if (h.kind == config::HeaderMatchSpec::Kind::Regex) {
      header_regexes_.push_back(std::make_unique<re2::RE2>(h.value));
    } else {
      header_regexes_.push_back(nullptr);
    }
  }
  if (const auto& fb = spec_.policies.fallback) {
    Fallback compiled;
    for (const auto& name : fb->on) {
      if (auto trigger = config::fallbackTriggerFromName(name)) {
        compiled.triggers |= 1u << static_cast<uint32_t>(*trigger);
      }
    }
    compiled.status = fb->status;
    for (const auto& [name, value] : fb->headers) {
      std::string lower = name;
      http::toLowerInPlace(lower);
      if (lower != "content-length") {
        compiled.headers.add(lower, value);
      }
    }
    compiled.body = fb->body;
    compiled.grpc_status = grpcStatusFromName(fb->grpc_status).value_or(GrpcStatus::Unavailable);
    compiled.grpc_message = fb->grpc_message;
    fallback_ = std::move(compiled);
  }
  if (spec_.match.grpc) {
    grpc_prefix_ = "/" + spec_.match.grpc->service + "/";
    if (!spec_.match.grpc->method.empty()) {
      grpc_prefix_ += spec_.match.grpc->method;
    }
  }
}

bool Route::matches(const http::RequestHeaders& req) const {
  const auto& m = spec_.match;
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
  if (m.grpc) {
    if (!req.isGrpc()) {
      return false;
    }
    if (!spec_.match.grpc->method.empty()) {
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
