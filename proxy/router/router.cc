#include "proxy/router/router.h"

#include "common/assert.h"
#include "policies/retry/retry_after.h"
#include "proxy/http/grpc.h"
#include "proxy/network/buffer.h"
#include "proxy/upstream/hash_key.h"

namespace bulwark::router {
namespace {

/** The worker's generator behind the policies' Random seam. */
class WorkerRandom : public policies::Random {
public:
  explicit WorkerRandom(std::mt19937_64& engine) : engine_(engine) {}
  uint64_t next() override { return engine_(); }

private:
  std::mt19937_64& engine_;
};

}  // namespace

Router::Router(RouterContext& ctx, RouterCallbacks& callbacks, const RouteEntry& route,
               std::string downstream_address)
    : ctx_(ctx),
      callbacks_(callbacks),
      route_(route),
      downstream_address_(std::move(downstream_address)),
      random_(std::make_unique<WorkerRandom>(ctx.rng)) {}

Router::~Router() {
  *alive_ = false;
  attempts_.clear();
}

const http::RequestHeaders& Router::headersForAttempt(uint32_t number) {
  // Every header an attempt changes is set again for the next one (or left as the client sent
  // it, the same for every attempt), so retries and hedges send the request's own headers
  // without a copy each.
  http::RequestHeaders& headers = *request_;
  headers.headers.set("x-bulwark-attempt", std::to_string(number));
  if (auto* trace = callbacks_.trace();
      trace != nullptr && number >= 1 && number <= attempt_spans_.size()) {
    // The upstream's parent is this attempt's span, a child of the request's server span.
    trace->tracer->inject(headers.headers,
                          {trace->server.trace_id, attempt_spans_[number - 1], true},
                          trace->server.span_id);
  }
  if (grpc_) {
    if (number > 1) {
      headers.headers.set("grpc-previous-rpc-attempts", std::to_string(number - 1));
    }
    // The upstream sees the deadline this attempt actually has left.
    if (deadline_) {
      const auto left = std::chrono::duration_cast<std::chrono::microseconds>(remaining());
      headers.headers.set("grpc-timeout", http::grpc::encodeTimeout(left));
      if (auto* record = callbacks_.decisions()) {
        record->setDeadlineSent(
            std::chrono::duration_cast<std::chrono::milliseconds>(left).count());
      }
    }
  }
  return headers;
}

std::chrono::nanoseconds Router::remaining() const {
  if (!deadline_) {
    return std::chrono::nanoseconds::max();
  }
  return std::max(std::chrono::nanoseconds(0), *deadline_ - std::chrono::steady_clock::now());
}

void Router::onRequestHeaders(http::RequestHeadersPtr&& headers, bool end_stream) {
  BULWARK_ASSERT(ctx_.dispatcher.isThisThread());
  request_ = std::move(headers);
  request_complete_ = end_stream;
  grpc_ = request_->isGrpc();
  upgrade_ = !request_->upgrade.empty();
  has_idempotency_key_ = request_->headers.has(route_.route->idempotencyKeyHeader());

  // Deadline: the route's request timeout, tightened by the client's grpc-timeout when honored.
  const RouteTimeouts& timeouts = route_.route->timeouts();
  std::chrono::microseconds budget =
      std::chrono::duration_cast<std::chrono::microseconds>(timeouts.request);
  if (grpc_ && timeouts.honor_grpc_deadline) {
    if (auto value = request_->headers.get("grpc-timeout")) {
      if (auto client = http::grpc::parseTimeout(*value)) {
        if (auto* record = callbacks_.decisions()) {
          record->setDeadlineReceived(
              std::chrono::duration_cast<std::chrono::milliseconds>(*client).count());
        }
        auto effective = *client;
        if (timeouts.grpc_max_deadline.count() > 0) {
          effective = std::min(effective, std::chrono::duration_cast<std::chrono::microseconds>(
                                              timeouts.grpc_max_deadline));
        }
        effective -=
            std::chrono::duration_cast<std::chrono::microseconds>(timeouts.grpc_deadline_offset);
        if (effective.count() < 0) {
          effective = std::chrono::microseconds(0);
        }
        if (budget.count() == 0 || effective < budget) {
          budget = effective;
        }
      }
    }
  }
  if (budget.count() > 0) {
    deadline_ = std::chrono::steady_clock::now() + budget;
    if (budget == timeouts.request) {
      ctx_.deadlines.forDuration(budget).arm(request_deadline_);
    } else {
      request_timer_ = ctx_.dispatcher.createTimer([this] { onRequestTimeout(); });
      request_timer_->enableTimer(budget);
    }
  }
  route_.route->retryBudget().recordRequest(std::chrono::steady_clock::now());
  startAttempt(AttemptKind::Initial);
  if (!done_ && !upgrade_ && route_.route->hedgePolicy() != nullptr) {
    armHedgeTimer();
  }
}

void Router::startAttempt(AttemptKind kind) {
  if (done_) {
    return;
  }
  auto now = std::chrono::steady_clock::now();
  auto admitted = route_.upstream->admitAttempt(now);
  if (auto* rejection = std::get_if<upstream::AdmitRejection>(&admitted)) {
    if (!attempts_.empty()) {
      return;  // a hedge that cannot start: the other attempts go on
    }
    if (rejection->reason == upstream::AdmitRejection::Reason::Overflow) {
      failRequest(http::LocalReply(http::LocalReplyKind::UpstreamOverflow));
      return;
    }
    if (auto* record = callbacks_.decisions()) {
      const auto state = route_.upstream->breakerState();
      record->add("breaker_open",
                  {{"upstream", route_.upstream->name()},
                   {"state", state ? std::string(policies::breakerStateLabel(*state)) : "open"},
                   {"retry_after_ms", std::to_string(rejection->retry_after.count())}});
    }
    http::LocalReply reply(http::LocalReplyKind::CircuitOpen);
    if (grpc_) {
      reply.headers.add("grpc-retry-pushback-ms", std::to_string(rejection->retry_after.count()));
    } else {
      auto secs = std::max<int64_t>(1, (rejection->retry_after.count() + 999) / 1000);
      reply.headers.add("retry-after", std::to_string(secs));
    }
    failRequest(std::move(reply));
    return;
  }
  auto permit = std::move(std::get<upstream::AttemptPermitPtr>(admitted));
  auto& tlu = ctx_.upstreamFor(route_.upstream);
  upstream::LbContext lb;
  lb.permit = permit.get();
  lb.hash_key = upstream::hashKeyFor(route_.upstream->spec(), *request_, downstream_address_);
  if (route_.route->retrySettings().ignore_previous_hosts) {
    lb.attempted =
        std::span<const upstream::Host* const>(attempted_hosts_.data(), attempted_hosts_.size());
  }
  auto host = tlu.pickHost(ctx_.rng, lb);
  if (permit->dry_run != nullptr) {
    callbacks_.recordDryRun(permit->dry_run);
  }
  if (!host) {
    if (attempts_.empty()) {
      failRequest(http::LocalReply(http::LocalReplyKind::NoHealthyUpstream));
    }
    return;
  }
  ++attempts_started_;
  if (callbacks_.trace() != nullptr) {
    attempt_spans_.push_back(tracing::randomSpanId(ctx_.rng));
    attempt_span_done_.push_back(false);
    attempt_reasons_.push_back(kind == AttemptKind::Retry ? last_retry_reason_ : std::string());
  }
  if (auto* record = callbacks_.decisions()) {
    const char* kind_label =
        kind == AttemptKind::Initial ? "initial" : (kind == AttemptKind::Retry ? "retry" : "hedge");
    record->startAttempt(attempts_started_, kind_label,
                         kind == AttemptKind::Retry ? last_retry_reason_ : std::string(),
                         host->address);
  }
  attempted_hosts_.push_back(host.get());
  last_host_ = host->address;
  switch (kind) {
    case AttemptKind::Initial: route_.stats->attempts_initial->Increment(); break;
    case AttemptKind::Retry: route_.stats->attempts_retry->Increment(); break;
    case AttemptKind::Hedge: route_.stats->attempts_hedge->Increment(); break;
  }
  auto attempt = std::make_unique<UpstreamRequest>(*this, ctx_.dispatcher, route_, kind,
                                                   attempts_started_, host, std::move(permit));
  auto* raw = attempt.get();
  attempts_.push_back(std::move(attempt));
  // Everything the downstream sent so far goes to the new attempt first.
  if (replay_body_.length() > 0) {
    raw->sendBody(replay_body_.get(), request_complete_ && !request_trailers_, true);
  } else if (request_complete_ && !request_trailers_) {
    raw->sendBody(network::emptyBuffer(), true, false);
  }
  if (request_trailers_) {
    raw->sendTrailers(*request_trailers_);
  }
  auto per_try = route_.route->retrySettings().per_try_timeout;
  if (per_try.count() > 0 && deadline_) {
    per_try = std::min(per_try, remaining());
  }
  raw->start(tlu.poolFor(host), per_try);
}

size_t Router::bufferedBytes() const {
  size_t bytes = replay_body_.length();
  for (const auto& a : attempts_) {
    bytes += a->bufferedBytes();
  }
  return bytes;
}

void Router::onRequestData(evbuffer* data, bool end_stream) {
  if (end_stream) {
    request_complete_ = true;
  }
  if (done_) {
    evbuffer_drain(data, evbuffer_get_length(data));
    return;
  }
  bool may_replay = mayReplay();
  if (may_replay && !body_overflowed_) {
    if (replay_body_.length() + evbuffer_get_length(data) <=
        route_.route->retrySettings().buffer_limit) {
      if (evbuffer_get_length(data) > 0) {
        network::copyBuffer(data, replay_body_.get());
      }
    } else {
      // Too large to replay: this request will not be retried (retryBufferLimit).
      body_overflowed_ = true;
      replay_body_.clear();
    }
  } else if (!may_replay) {
    body_overflowed_ = true;
  }
  size_t live = 0;
  for (auto& a : attempts_) {
    if (!a->complete()) {
      ++live;
    }
  }
  size_t i = 0;
  for (auto& a : attempts_) {
    if (a->complete()) {
      continue;
    }
    ++i;
    a->sendBody(data, end_stream, i < live);  // the last live attempt takes the bytes
  }
  if (live == 0) {
    evbuffer_drain(data, evbuffer_get_length(data));
  }
}

void Router::onRequestTrailers(http::HeaderMap&& trailers) {
  request_complete_ = true;
  if (done_) {
    return;
  }
  for (auto& a : attempts_) {
    a->sendTrailers(trailers);
  }
  request_trailers_ = std::move(trailers);
}

void Router::onAttemptWritable(UpstreamRequest&, bool writable) {
  if (!writable && !downstream_read_disabled_) {
    downstream_read_disabled_ = true;
    callbacks_.readDisableDownstream(true);
  } else if (writable && downstream_read_disabled_) {
    downstream_read_disabled_ = false;
    callbacks_.readDisableDownstream(false);
  }
}

bool Router::maybeRetry(const policies::AttemptResult& result,
                        const http::ResponseHeaders* headers) {
  if (done_ || retry_pending_ || upgrade_) {
    return false;
  }
  const auto& policy = route_.route->retryPolicy();
  if (policy.options().attempts <= 1) {
    return false;
  }
  policies::RetryRequest request;
  request.result = result;
  request.attempts_made = attempts_started_;
  request.response_started = callbacks_.downstreamResponseStarted() || winner_ != nullptr;
  request.body_buffered = canReplayBody();
  request.method = request_->method;
  request.has_idempotency_key = has_idempotency_key_;
  request.deadline = deadline_;
  request.now = std::chrono::steady_clock::now();
  if (headers != nullptr) {
    if (grpc_) {
      if (auto v = headers->headers.get("grpc-retry-pushback-ms")) {
        request.pushback = policies::parseGrpcRetryPushback(*v);
      }
    } else if (auto v = headers->headers.get("retry-after")) {
      request.pushback = policies::parseRetryAfter(*v, std::chrono::system_clock::now());
    }
  }
  // Retries in flight at once are capped too (Envoy's form); the permit lives until the request
  // ends.
  if (!retry_permit_) {
    retry_permit_ = route_.route->retryConcurrency().tryAcquire(route_.upstream->activeRequests());
    if (!retry_permit_) {
      route_.stats->retryBudgetExhausted();
      if (auto* record = callbacks_.decisions()) {
        record->setRetryStop("budget_exhausted");
      }
      return false;
    }
  }
  auto decision = policy.decide(request, &route_.route->retryBudget(), *random_);
  if (!decision.retry) {
    if (retries_started_ == 0) {
      retry_permit_.reset();
    }
    switch (decision.why) {
      case policies::NoRetryReason::AttemptsExhausted: route_.stats->retryLimitExceeded(); break;
      case policies::NoRetryReason::BudgetExhausted: route_.stats->retryBudgetExhausted(); break;
      default: break;
    }
    if (auto* record = callbacks_.decisions();
        record != nullptr && decision.why != policies::NoRetryReason::NotRetriable) {
      record->setRetryStop(policies::noRetryReasonLabel(decision.why));
    }
    return false;
  }
  // The upstream's maxRetries threshold (Envoy): retries in flight across all routes.
  auto upstream_retry = route_.upstream->tryAcquireRetry();
  if (!upstream_retry) {
    route_.stats->retryBudgetExhausted();
    if (auto* record = callbacks_.decisions()) {
      record->setRetryStop("budget_exhausted");
    }
    return false;
  }
  upstream_retry_permits_.push_back(std::move(upstream_retry));
  route_.stats->retry(std::string(decision.reason)).Increment();
  last_retry_reason_ = std::string(decision.reason);
  if (decision.pushback_honored) {
    route_.stats->pushbackHonored();
  }
  ++retries_started_;
  scheduleRetry(decision.delay);
  return true;
}

void Router::scheduleRetry(std::chrono::nanoseconds delay) {
  retry_pending_ = true;
  // Never retried inline (Envoy's rule): even a zero backoff runs from the event loop.
  retry_timer_ = ctx_.dispatcher.createTimer([this] {
    retry_pending_ = false;
    startAttempt(AttemptKind::Retry);
    if (!done_ && attempts_.empty()) {
      failRequest(http::LocalReply(http::LocalReplyKind::NoHealthyUpstream));
    }
  });
  retry_timer_->enableTimer(std::chrono::duration_cast<std::chrono::microseconds>(delay));
}

policies::HedgePolicy::Request Router::hedgeRequest() const {
  policies::HedgePolicy::Request request;
  request.method = request_->method;
  request.grpc = grpc_;
  request.has_idempotency_key = has_idempotency_key_;
  request.attempts_started = attempts_started_;
  request.response_started = winner_ != nullptr;
  return request;
}

void Router::armHedgeTimer() {
  const auto* hedge = route_.route->hedgePolicy();
  if (!hedge->eligible(hedgeRequest())) {
    return;
  }
  const uint32_t slot = route_.route->latencySlot();
  const auto delay = slot == Route::kNoLatencySlot
                         ? std::optional<policies::Duration>(hedge->delay())
                         : hedge->delayFor(ctx_.attemptLatency(slot), ctx_.dispatcher.now());
  if (!delay) {
    return;  // delay: auto without enough recent attempts to know what is late
  }
  hedge_timer_ = ctx_.dispatcher.createTimer([this] { onHedgeTimer(); });
  hedge_timer_->enableTimer(std::chrono::duration_cast<std::chrono::microseconds>(*delay));
}

void Router::onHedgeTimer() {
  if (done_ || winner_ != nullptr || !request_complete_ || !canReplayBody()) {
    return;
  }
  if (route_.route->hedgePolicy()->decide(hedgeRequest(), &route_.route->retryBudget())) {
    return;  // the reason why not
  }
  route_.stats->hedge("started");
  startAttempt(AttemptKind::Hedge);
  armHedgeTimer();
}

void Router::onAttemptHeaders(UpstreamRequest& attempt, http::ResponseHeadersPtr&& headers,
                              bool end_stream) {
  if (done_ || (winner_ != nullptr && winner_ != &attempt)) {
    return;
  }
  uint32_t status = headers->status;
  if (const uint32_t slot = route_.route->latencySlot(); slot != Route::kNoLatencySlot) {
    const auto now = ctx_.dispatcher.now();
    ctx_.attemptLatency(slot).record(now - attempt.startTime(), now);
  }
  auto result = attempt.result(status, headers.get());
  // A retriable answer (503, trailers-only UNAVAILABLE, ...) is retried before anything goes
  // downstream, when the policy allows it.
  auto outcome = policies::classify(result);
  // A gRPC 200 whose stream goes on carries its grpc-status in the trailers: the headers say
  // nothing about the outcome yet. classify() judges a finished call, where a missing status is a
  // protocol error; applied here it made every normal response look retriable, so routes that may
  // re-send a sent call (nonIdempotent: always, hedging) re-sent every call.
  if (grpc_ && !end_stream && status == 200 && !result.grpc_status.has_value()) {
    outcome = policies::Outcome::Success;
  }
  if (outcome != policies::Outcome::Success && winner_ == nullptr) {
    bool others_live = false;
    for (auto& a : attempts_) {
      if (a.get() != &attempt && !a->complete()) {
        others_live = true;
      }
    }
    if (maybeRetry(result, headers.get()) || others_live) {
      attempt.cancel();
      retireAttempt(attempt, result);
      return;
    }
  }
  if (status >= 500 && callbacks_.fallbackReplaces(config::FallbackTrigger::Upstream5xx)) {
    attempt.cancel();
    retireAttempt(attempt, result);
    http::LocalReply reply(http::LocalReplyKind::Upstream5xx);
    reply.status = status;
    failRequest(std::move(reply));
    return;
  }
  winner_ = &attempt;
  recordAttemptEnd(attempt, result, {}, false);
  if (attempt.kind() == AttemptKind::Hedge) {
    route_.stats->hedge("won");
  }
  if (hedge_timer_) {
    hedge_timer_->disableTimer();
  }
  resetOtherAttempts(&attempt);
  if (end_stream) {
    completeWith(attempt, result);
  }
  if (upgrade_) {
    if (status == 101) {
      // The switch happened: the tunnel lives as long as it carries bytes (timeouts.idle), not
      // within the request deadline.
      stopRequestTimeout();
      deadline_.reset();
    }
    route_.stats->upgrade(request_->upgrade, status == 101);
  }
  callbacks_.encodeHeaders(std::move(headers), end_stream);
}

void Router::onAttemptData(UpstreamRequest& attempt, evbuffer* data, bool end_stream) {
  if (winner_ != &attempt) {
    evbuffer_drain(data, evbuffer_get_length(data));
    return;
  }
  if (end_stream) {
    completeWith(attempt, attempt.responseResult());
  }
  callbacks_.encodeData(data, end_stream);
}

void Router::onAttemptTrailers(UpstreamRequest& attempt, http::HeaderMap&& trailers) {
  if (winner_ != &attempt) {
    return;
  }
  auto result = attempt.responseResult();
  if (auto gs = trailers.get("grpc-status")) {
    result.grpc_status = bulwark::parseGrpcStatus(*gs);
  }
  result.pushback = result.pushback || trailers.has("grpc-retry-pushback-ms");
  completeWith(attempt, result);
  callbacks_.encodeTrailers(std::move(trailers));
}

void Router::onAttemptFailed(UpstreamRequest& attempt, policies::AttemptResult result,
                             http::LocalReplyKind kind) {
  if (done_) {
    retireAttempt(attempt, result);
    return;
  }
  if (winner_ == &attempt) {
    // The response already started downstream: nothing to retry; the stream must be reset.
    retireAttempt(attempt, result);
    failRequest(http::LocalReply(kind));
    return;
  }
  bool retrying = maybeRetry(result, nullptr);
  retireAttempt(attempt, result);
  if (retrying) {
    return;
  }
  for (auto& a : attempts_) {
    if (!a->complete()) {
      return;  // another hedge is still running
    }
  }
  if (retry_pending_) {
    return;
  }
  failRequest(http::LocalReply(kind));
}

void Router::recordAttemptEnd(const UpstreamRequest& attempt, const policies::AttemptResult& result,
                              std::string_view outcome, bool final) {
  auto* record = callbacks_.decisions();
  auto* trace = callbacks_.trace();
  if (record == nullptr && trace == nullptr) {
    return;
  }
  const std::string_view label =
      outcome.empty() ? policies::reasonLabel(policies::classify(result)) : outcome;
  if (record != nullptr) {
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - attempt.startTime());
    record->endAttempt(attempt.number(), label, result.http_status, took.count());
  }
  const uint32_t n = attempt.number();
  if (trace == nullptr || !final || n == 0 || n > attempt_spans_.size() ||
      attempt_span_done_[n - 1]) {
    return;
  }
  attempt_span_done_[n - 1] = true;
  tracing::Span span;
  span.trace_id = trace->server.trace_id;
  span.span_id = attempt_spans_[n - 1];
  span.parent = trace->server.span_id;
  span.kind = tracing::Span::Kind::Client;
  span.name = request_->method;
  span.start_unix_nanos = tracing::unixNanos(attempt.startTime());
  span.end_unix_nanos = tracing::unixNanos(std::chrono::steady_clock::now());
  span.set("http.request.method", request_->method);
  span.set("server.address", attempt.host().address);
  span.set("url.path", request_->path);
  if (result.http_status != 0) {
    span.set("http.response.status_code", static_cast<int64_t>(result.http_status));
  }
  if (result.grpc_status) {
    span.set("rpc.grpc.status_code", static_cast<int64_t>(*result.grpc_status));
  }
  const AttemptKind kind = attempt.kind();
  span.set("bulwark.attempt", static_cast<int64_t>(n));
  span.set(
      "bulwark.attempt.kind",
      std::string(kind == AttemptKind::Initial ? "initial"
                                               : (kind == AttemptKind::Retry ? "retry" : "hedge")));
  if (kind == AttemptKind::Retry && n <= attempt_reasons_.size()) {
    span.set("bulwark.retry.reason", attempt_reasons_[n - 1]);
  }
  span.set("bulwark.outcome", std::string(label));
  span.status = label == "success" ? tracing::Span::Status::Ok : tracing::Span::Status::Error;
  trace->tracer->submit(std::move(span));
}

void Router::retireAttempt(UpstreamRequest& attempt, const policies::AttemptResult& result) {
  recordAttemptEnd(attempt, result);
  attempt.report(result);
  for (auto it = attempts_.begin(); it != attempts_.end(); ++it) {
    if (it->get() == &attempt) {
      // The attempt may be on the call stack (its codec callback): delete it later.
      struct Holder : event::DeferredDeletable {
        std::unique_ptr<UpstreamRequest> attempt;
      };
      auto holder = std::make_unique<Holder>();
      holder->attempt = std::move(*it);
      attempts_.erase(it);
      ctx_.dispatcher.deferredDelete(std::move(holder));
      return;
    }
  }
}

void Router::resetOtherAttempts(UpstreamRequest* keep) {
  std::vector<UpstreamRequest*> others;
  for (auto& a : attempts_) {
    if (a.get() != keep) {
      others.push_back(a.get());
    }
  }
  for (auto* a : others) {
    a->cancel();
    // A hedge that lost is not its host's failure: the breaker and outlier detection only learn
    // from real answers.
    a->reportCancelled();
    recordAttemptEnd(*a, a->result(0, nullptr), "cancelled");
    retireAttempt(*a, a->result(0, nullptr));
  }
}

void Router::stopRequestTimeout() {
  request_deadline_.disarm();
  if (request_timer_) {
    request_timer_->disableTimer();
  }
}

void Router::stopTimers() {
  stopRequestTimeout();
  for (auto* timer : {&retry_timer_, &hedge_timer_}) {
    if (*timer) {
      (*timer)->disableTimer();
    }
  }
}

void Router::completeWith(UpstreamRequest& attempt, const policies::AttemptResult& result) {
  done_ = true;
  stopRequestTimeout();
  recordAttemptEnd(attempt, result);
  attempt.report(result);
  route_.stats->attempts_per_request->observe(attempts_started_);
}

void Router::failRequest(http::LocalReply reply) {
  if (done_) {
    return;
  }
  done_ = true;
  stopTimers();
  route_.stats->attempts_per_request->observe(attempts_started_);
  callbacks_.sendLocalReply(std::move(reply));
}

void Router::onRequestTimeout() {
  if (done_) {
    return;
  }
  std::vector<UpstreamRequest*> all;
  for (auto& a : attempts_) {
    all.push_back(a.get());
  }
  for (auto* a : all) {
    a->cancel();
    auto r = a->result(0, nullptr);
    r.local_failure = policies::LocalFailure::PerTryTimeout;
    retireAttempt(*a, r);
  }
  winner_ = nullptr;
  route_.stats->deadlineExceeded();
  if (auto* record = callbacks_.decisions()) {
    record->add(
        "deadline_exceeded",
        {{"timeout_ms", std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           route_.route->timeouts().request)
                                           .count())}});
    if (retry_pending_) {
      record->setRetryStop("deadline_exceeded");
    }
  }
  failRequest(http::LocalReply(http::LocalReplyKind::RequestTimeout));
}

void Router::onDownstreamReset() {
  done_ = true;
  stopTimers();
  std::vector<UpstreamRequest*> all;
  for (auto& a : attempts_) {
    all.push_back(a.get());
  }
  for (auto* a : all) {
    a->cancel();
    // The client left: not the host's failure.
    a->reportCancelled();
    retireAttempt(*a, a->result(0, nullptr));
  }
}

void Router::onDownstreamAboveWriteBufferHighWatermark() {
  if (winner_ != nullptr) {
    winner_->readDisable(true);
  }
}

void Router::onDownstreamBelowWriteBufferLowWatermark() {
  if (winner_ != nullptr) {
    winner_->readDisable(false);
  }
}

}  // namespace bulwark::router
