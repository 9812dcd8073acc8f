#include "filters/load_shed/load_shed_filter.h"

#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "proxy/stats/stats.h"

namespace bulwark::filters::load_shed {
namespace {

// Bounded window buffer: the percentile of 1024 reservoir samples is plenty for one window and
// keeps the once-per-window sort short.
constexpr size_t kWindowSamples = 1024;

}  // namespace

LoadShedState::LoadShedState(std::unique_ptr<policies::AdaptiveLimit> limit,
                             config::AdaptiveConcurrencySpec spec, prometheus::Gauge& limit_gauge)
    : limit_(std::move(limit)),
      spec_(std::move(spec)),
      limit_gauge_(limit_gauge),
      samples_(kWindowSamples),
      random_(0x6c6f61645f736865ULL) {
  limit_gauge_.Set(static_cast<double>(limit_->limit()));
}

void LoadShedState::onSample(policies::Duration latency, bool dropped,
                             policies::MonotonicTime now) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!window_end_) {
    window_end_ =
        policies::saturatingAdd(now, std::chrono::duration_cast<policies::Duration>(spec_.window));
  }
  samples_.add(latency, random_);
  dropped_ = dropped_ || dropped;
  if (now >= *window_end_) {
    closeWindowLocked(now);
  }
}

void LoadShedState::closeWindowLocked(policies::MonotonicTime now) {
  policies::LimitSample sample;
  sample.latency = samples_.percentile(spec_.latency_percentile);
  sample.count = samples_.seen();
  sample.max_inflight = admission_.takePeakInflight();
  sample.dropped = dropped_;
  const uint32_t updated = limit_->update(sample);
  limit_gauge_.Set(static_cast<double>(updated));
  samples_.clear();
  dropped_ = false;
  window_end_ =
      policies::saturatingAdd(now, std::chrono::duration_cast<policies::Duration>(spec_.window));
}

std::optional<bool> sampleKind(const http::StreamInfo& info) {
  if (info.local_reply) {
    const std::string_view detail = info.response_detail;
    if (detail == "request_timeout" || detail == "fallback:timeout" ||
        detail == "upstream_connect_timeout" || detail == "upstream_5xx" ||
        detail == "fallback:upstream5xx" || detail == "upstream_overflow") {
      return true;
    }
    // Our own and other filters' rejections, breaker fail-fast, connect failures and resets
    // say nothing about how long the upstream takes.
    return std::nullopt;
  }
  if (info.status == 0) {
    return std::nullopt;  // downstream reset before the answer
  }
  if (info.grpc && info.grpc_status) {
    return *info.grpc_status == GrpcStatus::Unavailable ||
           *info.grpc_status == GrpcStatus::DeadlineExceeded;
  }
  return info.status == 503 || info.status == 504;
}

http::FilterStatus LoadShedFilter::onRequestHeaders(http::RequestHeaders& headers,
                                                    bool end_stream) {
  (void)end_stream;
  policies::Priority priority = policies::Priority::Default;
  if (!config_->priority_header.empty()) {
    if (auto value = headers.headers.get(config_->priority_header)) {
      priority = policies::parsePriority(*value).value_or(policies::Priority::Default);
    }
  }
  permit_ = state_->tryAdmit(priority);
  if (permit_) {
    admitted_at_ = state_->clock().now(*callbacks_);
    return http::FilterStatus::Continue;
  }
  if (auto* decisions = callbacks_->decisions()) {
    decisions->add("shed", {{"limit", std::to_string(state_->limit())},
                            {"in_flight", std::to_string(state_->inflight())},
                            {"priority", std::string(policies::priorityLabel(priority))}});
  }
  if (config_->dry_run_shed != nullptr) {
    // Let it through without a permit, as if it had been shed: the in-flight count and the
    // latency samples stay what enforcement would have seen.
    recordDryRun(*callbacks_, *config_->dry_run_shed, "shed");
    return http::FilterStatus::Continue;
  }
  config_->shed[static_cast<size_t>(priority)]->Increment();
  const config::RejectSpec& reject = config_->reject;
  http::LocalReply reply(http::LocalReplyKind::LoadShed);
  reply.status = reject.http_status;
  reply.grpc_status = grpcStatusFromName(reject.grpc_status).value_or(GrpcStatus::Unavailable);
  reply.headers.add("x-bulwark-overloaded", "true");
  const auto retry_after = std::chrono::duration_cast<policies::Duration>(reject.retry_after);
  if (retry_after > policies::Duration::zero()) {
    if (callbacks_->isGrpc()) {
      reply.headers.add("grpc-retry-pushback-ms", pushbackMillisValue(retry_after));
    } else {
      reply.headers.add("retry-after", retryAfterValue(retry_after));
    }
  }
  callbacks_->sendLocalReply(std::move(reply));
  return http::FilterStatus::StopIteration;
}

void LoadShedFilter::onStreamComplete(const http::StreamInfo& info) {
  if (!permit_) {
    return;  // shed here, or never reached this filter
  }
  permit_.reset();
  if (auto dropped = sampleKind(info)) {
    const policies::MonotonicTime now = state_->clock().now(*callbacks_);
    state_->onSample(now - admitted_at_, *dropped, now);
  }
}

namespace {

class LoadShedFilterFactory : public http::FilterFactory {
public:
  std::string_view name() const override { return "load_shed"; }

  bool enabledFor(const config::RouteSpec& route) const override {
    return route.policies.load_shedding.has_value();
  }

  Result<http::FilterFactoryCb> create(http::FactoryContext& ctx) override {
    const config::RouteSpec& route = ctx.route();
    const config::LoadSheddingSpec& spec = *route.policies.load_shedding;
    // Without adaptiveConcurrency the schema defaults apply (gradient, 8..1024, p90, 1s): a
    // block with only priorityHeader/reject still sheds against a measured limit.
    const config::AdaptiveConcurrencySpec ac =
        spec.adaptive_concurrency.value_or(config::AdaptiveConcurrencySpec{});
    if (ac.window.count() <= 0) {
      return Status::error("loadShedding.adaptiveConcurrency.window must be greater than 0");
    }
    auto made = policies::makeAdaptiveLimit(ac.algorithm, ac.min_limit, ac.max_limit);
    if (!made) {
      return Status::error("loadShedding." + made.error());
    }
    auto& registry = ctx.stats().registry();
    prometheus::Gauge& limit_gauge =
        gaugeFamily(registry, "bulwark_concurrency_limit",
                    "Current adaptive concurrency limit of a route's load shedding")
            .Add({{"route", route.name}});
    const std::string fingerprint =
        fmt::format("load_shed:{}/{}/{}/{}/{}", ac.algorithm, ac.min_limit, ac.max_limit,
                    ac.latency_percentile, ac.window.count());
    std::unique_ptr<policies::AdaptiveLimit> limit = std::move(*made);
    auto state = ctx.sharedState<LoadShedState>(fingerprint, [&] {
      return std::make_shared<LoadShedState>(std::move(limit), ac, limit_gauge);
    });

    auto config = std::make_shared<LoadShedConfig>();
    config->priority_header = spec.priority_header;
    config->reject = spec.reject;
    if (spec.mode == "dryRun") {
      config->dry_run_shed = &dryRunCounter(registry, route.name, "load_shedding", "shed");
    }
    auto& shed = counterFamily(registry, "bulwark_load_shed_total",
                               "Requests rejected by a route's load shedding, by priority");
    for (auto priority : {policies::Priority::Critical, policies::Priority::Default,
                          policies::Priority::Sheddable}) {
      config->shed[static_cast<size_t>(priority)] =
          &shed.Add({{"route", route.name},
                     {"reason", "concurrency_limit"},
                     {"priority", std::string(policies::priorityLabel(priority))}});
    }
    std::shared_ptr<const LoadShedConfig> shared_config = std::move(config);
    return http::FilterFactoryCb([state, shared_config]() -> http::HttpFilterPtr {
      return std::make_unique<LoadShedFilter>(state, shared_config);
    });
  }
};

}  // namespace

http::FilterFactoryPtr makeFactory() { return std::make_unique<LoadShedFilterFactory>(); }

}  // namespace bulwark::filters::load_shed
