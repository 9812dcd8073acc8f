#include "filters/bulkhead/bulkhead_filter.h"

#include <atomic>
#include <chrono>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "proxy/stats/stats.h"

namespace bulwark::filters::bulkhead {

BulkheadState::BulkheadState(const policies::Bulkhead::Options& options, BulkheadMetrics metrics)
    : engine_(options), metrics_(metrics) {}

std::optional<policies::PartitionedConcurrencyLimit::Permit> BulkheadState::enqueue(
    BulkheadFilter& filter) {
  std::lock_guard<std::mutex> lock(mu_);
  // Pairs with the fence in onRelease(): either that release sees our queue slot (and then
  // waits for this lock and finds us queued), or we see its freed slot here.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (auto permit = engine_.tryAcquire(filter.partition_)) {
    return permit;
  }
  Waiters& waiters = queues_[filter.dispatcher_];
  filter.queue_pos_ = waiters.insert(waiters.end(), &filter);
  filter.in_queue_ = true;
  return std::nullopt;
}

void BulkheadState::remove(BulkheadFilter& filter) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!filter.in_queue_) {
    return;
  }
  queues_[filter.dispatcher_].erase(filter.queue_pos_);
  filter.in_queue_ = false;
}

void BulkheadState::onRelease(event::Dispatcher& dispatcher) {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (engine_.queued() == 0) {
    return;  // nobody waits anywhere: the common case takes no lock
  }
  pump(dispatcher);
  std::lock_guard<std::mutex> lock(mu_);
  if (engine_.active() >= engine_.options().max_concurrent_requests) {
    return;
  }
  for (auto& [other, waiters] : queues_) {
    if (other == &dispatcher || waiters.empty()) {
      continue;
    }
    // A waiter in `other`'s queue is a live filter of that worker (it leaves the queue under
    // this lock before it is destroyed), so that worker's dispatcher is alive to post to.
    other->post([self = shared_from_this(), other = other] { self->pump(*other); });
  }
}

void BulkheadState::pump(event::Dispatcher& dispatcher) {
  std::vector<BulkheadFilter*> admitted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = queues_.find(&dispatcher);
    if (it == queues_.end()) {
      return;
    }
    Waiters& waiters = it->second;
    for (auto w = waiters.begin(); w != waiters.end();) {
      if (engine_.active() >= engine_.options().max_concurrent_requests) {
        break;
      }
      BulkheadFilter* filter = *w;
      auto permit = engine_.tryAcquire(filter->partition_);
      if (!permit) {
        ++w;  // its partition is at its limit: do not block other partitions behind it
        continue;
      }
      filter->permit_ = std::move(permit);
      filter->in_queue_ = false;
      w = waiters.erase(w);
      admitted.push_back(filter);
    }
  }
  // Outside the lock: continueRequest() only posts to this worker's loop, but keep callbacks
  // out of critical sections anyway.
  for (BulkheadFilter* filter : admitted) {
    filter->onAdmittedFromQueue();
  }
}

size_t BulkheadState::queuedOn(event::Dispatcher& dispatcher) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = queues_.find(&dispatcher);
  return it == queues_.end() ? 0 : it->second.size();
}

BulkheadFilter::~BulkheadFilter() { releaseAll(); }

http::FilterStatus BulkheadFilter::onRequestHeaders(http::RequestHeaders& headers,
                                                    bool end_stream) {
  (void)end_stream;
  dispatcher_ = &callbacks_->dispatcher();
  if (!config_->partition_header.empty()) {
    partition_ = std::string(headers.headers.get(config_->partition_header).value_or(""));
  }
  const BulkheadMetrics& metrics = state_->metrics();
  auto admission = state_->engine().tryAdmit(partition_, state_->clock().now(*callbacks_));
  if (config_->dry_run_full != nullptr) {
    return dryRun(std::move(admission));
  }
  switch (admission.decision) {
    case policies::Bulkhead::Decision::Admitted:
      admit(std::move(*admission.permit));
      return http::FilterStatus::Continue;
    case policies::Bulkhead::Decision::RejectedPartition:
      record("bulkhead_partition_full");
      reject(http::LocalReplyKind::BulkheadPartitionFull, metrics.partition_full);
      return http::FilterStatus::StopIteration;
    case policies::Bulkhead::Decision::RejectedFull:
      record("bulkhead_full");
      reject(http::LocalReplyKind::BulkheadFull, metrics.full);
      return http::FilterStatus::StopIteration;
    case policies::Bulkhead::Decision::Queued: break;
  }
  queue_slot_ = std::move(admission.queue_slot);
  if (auto permit = state_->enqueue(*this)) {
    queue_slot_.reset();
    admit(std::move(*permit));
    return http::FilterStatus::Continue;
  }
  metrics.queued->Increment();
  queued_at_ = std::chrono::steady_clock::now();
  if (config_->queue_timeout > policies::Duration::zero()) {
    queue_timer_ = dispatcher_->createTimer([this] { onQueueTimeout(); });
    queue_timer_->enableTimer(std::chrono::ceil<std::chrono::microseconds>(config_->queue_timeout));
  }
  return http::FilterStatus::StopIteration;
}

http::FilterStatus BulkheadFilter::dryRun(policies::Bulkhead::Admission admission) {
  switch (admission.decision) {
    case policies::Bulkhead::Decision::Admitted: admit(std::move(*admission.permit)); break;
    case policies::Bulkhead::Decision::RejectedPartition:
      recordDryRun(*callbacks_, *config_->dry_run_partition_full, "bulkhead_partition_full");
      break;
    case policies::Bulkhead::Decision::RejectedFull:
      recordDryRun(*callbacks_, *config_->dry_run_full, "bulkhead_full");
      break;
    case policies::Bulkhead::Decision::Queued:
      // Would have waited for a slot: goes on now, holding neither a slot nor a queue place.
      recordDryRun(*callbacks_, *config_->dry_run_queued, "bulkhead_queued");
      break;
  }
  return http::FilterStatus::Continue;
}

void BulkheadFilter::onStreamComplete(const http::StreamInfo& info) {
  (void)info;
  releaseAll();
}

void BulkheadFilter::admit(policies::PartitionedConcurrencyLimit::Permit permit) {
  permit_ = std::move(permit);
  state_->metrics().active->Increment();
}

void BulkheadFilter::onAdmittedFromQueue() {
  // pump() already moved the permit in and took us off the queue.
  leaveQueue();
  state_->metrics().active->Increment();
  record("bulkhead_queued", true);
  callbacks_->continueRequest();
}

void BulkheadFilter::onQueueTimeout() {
  if (!in_queue_) {
    return;
  }
  leaveQueue();
  record("bulkhead_queue_timeout", true);
  // Last action: the local reply completes the stream (onStreamComplete runs re-entrantly and
  // finds nothing held); this object stays valid until the loop's deferred deletion.
  reject(http::LocalReplyKind::BulkheadQueueTimeout, state_->metrics().queue_timeout);
}

void BulkheadFilter::leaveQueue() {
  if (in_queue_) {
    state_->remove(*this);
  }
  if (queue_timer_) {
    queue_timer_->disableTimer();
  }
  if (queue_slot_) {
    queue_slot_.reset();
    state_->metrics().queued->Decrement();
  }
}

void BulkheadFilter::releaseAll() {
  leaveQueue();
  if (permit_) {
    permit_.reset();
    state_->metrics().active->Decrement();
    state_->onRelease(*dispatcher_);
  }
}

void BulkheadFilter::record(std::string_view name, bool with_queue_time) {
  auto* decisions = callbacks_->decisions();
  if (decisions == nullptr) {
    return;
  }
  const auto& engine = state_->engine();
  http::DecisionRecord::Fields fields = {
      {"max", std::to_string(engine.options().max_concurrent_requests)},
      {"active", std::to_string(engine.active())},
      {"queued", std::to_string(engine.queued())}};
  if (!partition_.empty()) {
    fields.emplace_back("partition", partition_);
  }
  if (with_queue_time) {
    fields.emplace_back("queued_ms",
                        std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::steady_clock::now() - queued_at_)
                                           .count()));
  }
  decisions->add(std::string(name), std::move(fields));
}

void BulkheadFilter::reject(http::LocalReplyKind kind, prometheus::Counter* counter) {
  counter->Increment();
  http::LocalReply reply(kind);
  reply.headers.add("x-bulwark-overloaded", "true");
  if (!callbacks_->isGrpc()) {
    // Short for a full bulkhead: slots free as
    // soon as requests finish.
    reply.headers.add("retry-after", "1");
  }
  callbacks_->sendLocalReply(std::move(reply));
}

namespace {

class BulkheadFilterFactory : public http::FilterFactory {
public:
  std::string_view name() const override { return "bulkhead"; }

  bool enabledFor(const config::RouteSpec& route) const override {
    return route.policies.bulkhead.has_value();
  }

  Result<http::FilterFactoryCb> create(http::FactoryContext& ctx) override {
    const config::RouteSpec& route = ctx.route();
    const config::BulkheadSpec& spec = *route.policies.bulkhead;
    if (spec.max_concurrent_requests == 0) {
      return Status::error("bulkhead.maxConcurrentRequests must be at least 1");
    }
    if (spec.max_concurrent_per_partition > 0 && spec.partition_header.empty()) {
      return Status::error("bulkhead.maxConcurrentPerPartition needs partitionBy.header");
    }
    policies::Bulkhead::Options options;
    options.max_concurrent_requests = spec.max_concurrent_requests;
    options.max_queued_requests = spec.max_queued_requests;
    options.max_concurrent_per_partition =
        spec.partition_header.empty() ? 0 : spec.max_concurrent_per_partition;

    auto& registry = ctx.stats().registry();
    const prometheus::Labels route_label{{"route", route.name}};
    auto& rejected = counterFamily(registry, "bulwark_bulkhead_rejected_total",
                                   "Requests rejected by a route bulkhead, by reason");
    BulkheadMetrics metrics;
    metrics.active =
        &gaugeFamily(registry, "bulwark_bulkhead_active", "Requests holding a route bulkhead slot")
             .Add(route_label);
    metrics.queued = &gaugeFamily(registry, "bulwark_bulkhead_queued",
                                  "Requests waiting in a route bulkhead queue")
                          .Add(route_label);
    metrics.full = &rejected.Add({{"route", route.name}, {"reason", "full"}});
    metrics.partition_full = &rejected.Add({{"route", route.name}, {"reason", "partition_full"}});
    metrics.queue_timeout = &rejected.Add({{"route", route.name}, {"reason", "queue_timeout"}});

    // The slot counts survive reloads that keep these numbers; the queue timeout does not
    // need to be part of it.
    const std::string fingerprint = fmt::format(
        "bulkhead:{}/{}/{}/{}", options.max_concurrent_requests, options.max_queued_requests,
        spec.partition_header, options.max_concurrent_per_partition);
    auto state = ctx.sharedState<BulkheadState>(
        fingerprint, [&] { return std::make_shared<BulkheadState>(options, metrics); });

    auto config = std::make_shared<BulkheadConfig>();
    config->partition_header = spec.partition_header;
    if (spec.mode == "dryRun") {
      auto& registry = ctx.stats().registry();
      config->dry_run_full = &dryRunCounter(registry, route.name, "bulkhead", "bulkhead_full");
      config->dry_run_partition_full =
          &dryRunCounter(registry, route.name, "bulkhead", "bulkhead_partition_full");
      config->dry_run_queued = &dryRunCounter(registry, route.name, "bulkhead", "bulkhead_queued");
    }
    if (spec.queue_timeout.count() > 0) {
      config->queue_timeout = spec.queue_timeout;
    } else if (route.policies.timeouts && route.policies.timeouts->request.count() > 0) {
      config->queue_timeout = route.policies.timeouts->request;
    }
    std::shared_ptr<const BulkheadConfig> shared_config = std::move(config);
    return http::FilterFactoryCb([state, shared_config]() -> http::HttpFilterPtr {
      return std::make_unique<BulkheadFilter>(state, shared_config);
    });
  }
};

}  // namespace

http::FilterFactoryPtr makeFactory() { return std::make_unique<BulkheadFilterFactory>(); }

}  // namespace bulwark::filters::bulkhead
