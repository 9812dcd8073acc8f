#include "examples/ranking/ranking_service.h"

#include <unistd.h>

#include <algorithm>

namespace bulwark::examples::ranking {
namespace {

void fillItems(const std::vector<ScoredItem>& items, std::size_t begin, std::size_t end,
               google::protobuf::RepeatedPtrField<::ranking::v1::RankedItem>* out) {
  out->Reserve(static_cast<int>(end - begin));
  for (std::size_t i = begin; i < end; ++i) {
    auto* item = out->Add();
    item->set_item_id(items[i].item_id);
    item->set_score(items[i].score);
  }
}

}  // namespace

RankingServiceImpl::RankingServiceImpl(Ranker& ranker, CallFaultDecider decider, DrainSignal& drain,
                                       ServiceOptions options)
    : ranker_(ranker),
      decider_(std::move(decider)),
      drain_(drain),
      options_(std::move(options)),
      replica_id_(std::make_shared<const std::string>(options_.replica_id)) {}

void RankingServiceImpl::setReplicaId(std::string replica_id) {
  replica_id_.store(std::make_shared<const std::string>(std::move(replica_id)));
}

grpc::Status RankingServiceImpl::fail(grpc::ServerContext& ctx, const std::string& replica,
                                      grpc::Status status) {
  // Errors are trailers-only responses (no initial metadata was added before them), so the
  // replica name goes in the trailers. Trailers-only tells a proxy that nothing was served, which
  // is what lets it retry an UNAVAILABLE on another replica.
  ctx.AddTrailingMetadata(kReplicaIdMetadata, replica);
  return status;
}

std::optional<grpc::Status> RankingServiceImpl::applyFault(grpc::ServerContext& ctx,
                                                           const std::string& replica,
                                                           const CallFault& fault) {
  if (fault.latency.count() > 0) {
    switch (drain_.waitFor(ctx, fault.latency)) {
      case DrainSignal::WaitResult::Elapsed: break;
      case DrainSignal::WaitResult::Cancelled:
        return endedEarly(ctx, "call cancelled during injected latency");
      case DrainSignal::WaitResult::Stopping:
        return fail(ctx, replica,
                    grpc::Status(grpc::StatusCode::UNAVAILABLE, "server shutting down"));
    }
  }
  switch (fault.kind) {
    case CallFault::Kind::None:
    case CallFault::Kind::Reset: return std::nullopt;
    case CallFault::Kind::Crash:
      // The crash knob simulates a process dying mid-request: no answer, no cleanup.
      _exit(fault.crash_exit_code);
    case CallFault::Kind::Error:
      if (fault.pushback_ms) {
        ctx.AddTrailingMetadata(kPushbackMetadata, std::to_string(*fault.pushback_ms));
      }
      return fail(ctx, replica, grpc::Status(fault.code, "injected fault"));
    case CallFault::Kind::Hang:
      if (drain_.waitFor(ctx, std::chrono::nanoseconds::max()) ==
          DrainSignal::WaitResult::Stopping) {
        return fail(ctx, replica,
                    grpc::Status(grpc::StatusCode::UNAVAILABLE, "server shutting down"));
      }
      return endedEarly(ctx, "hung call cancelled");
  }
  return std::nullopt;
}

grpc::Status RankingServiceImpl::endedEarly(grpc::ServerContext& ctx, const char* message) {
  // Only cancellations from the client side count: a drain also ends waits early.
  if (ctx.IsCancelled()) {
    cancelled_calls_.fetch_add(1, std::memory_order_relaxed);
  }
  return grpc::Status(grpc::StatusCode::CANCELLED, message);
}

ServiceCounters RankingServiceImpl::counters() const {
  ServiceCounters c;
  c.rank_calls = rank_calls_.load(std::memory_order_relaxed);
  c.rank_stream_calls = rank_stream_calls_.load(std::memory_order_relaxed);
  c.cancelled_calls = cancelled_calls_.load(std::memory_order_relaxed);
  c.pages_sent = pages_sent_.load(std::memory_order_relaxed);
  return c;
}

bool RankingServiceImpl::slowBody(grpc::ServerContext& ctx, const CallFault& fault,
                                  std::size_t bytes) {
  if (fault.slow_body_bytes_per_sec <= 0) {
    return true;
  }
  const auto delay = std::chrono::nanoseconds(static_cast<std::int64_t>(
      static_cast<double>(bytes) * 1e9 / static_cast<double>(fault.slow_body_bytes_per_sec)));
  return drain_.waitFor(ctx, delay) == DrainSignal::WaitResult::Elapsed;
}

Result<RankResult> RankingServiceImpl::rank(const ::ranking::v1::RankRequest& request,
                                            grpc::Status& error) {
  if (request.tenant_id().empty()) {
    error = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "tenant_id is required");
    return Status::error(error.error_message());
  }
  if (request.limit() < 0 || request.limit() > options_.max_limit) {
    error = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                         "limit must be in [0, " + std::to_string(options_.max_limit) + "]");
    return Status::error(error.error_message());
  }
  const int limit = request.limit() == 0 ? options_.default_limit : request.limit();
  auto result =
      ranker_.rank(request.tenant_id(), request.user_id(), static_cast<std::size_t>(limit));
  if (!result) {
    error = grpc::Status(grpc::StatusCode::NOT_FOUND, result.error());
  }
  return result;
}

grpc::Status RankingServiceImpl::Rank(grpc::ServerContext* ctx,
                                      const ::ranking::v1::RankRequest* request,
                                      ::ranking::v1::RankResponse* response) {
  rank_calls_.fetch_add(1, std::memory_order_relaxed);
  const auto replica_ptr = replica_id_.load();
  const std::string& replica = *replica_ptr;
  const CallFault fault = decider_ ? decider_() : CallFault{};
  if (auto done = applyFault(*ctx, replica, fault)) {
    return *done;
  }
  if (fault.kind == CallFault::Kind::Reset) {
    ctx->TryCancel();
    return grpc::Status(grpc::StatusCode::CANCELLED, "injected reset");
  }
  grpc::Status error;
  auto result = rank(*request, error);
  if (!result) {
    return fail(*ctx, replica, error);
  }
  // Only now, with an answer to send: grpc++ sends custom initial metadata as a HEADERS frame of
  // its own, which would turn every error above into headers + trailers instead of trailers-only.
  ctx->AddInitialMetadata(kReplicaIdMetadata, replica);
  fillItems(result->items, 0, result->items.size(), response->mutable_items());
  response->set_degraded(result->degraded);
  response->set_replica_id(replica);
  if (!slowBody(*ctx, fault, response->ByteSizeLong())) {
    return endedEarly(*ctx, "call ended during slow body");
  }
  return grpc::Status::OK;
}

grpc::Status RankingServiceImpl::RankStream(grpc::ServerContext* ctx,
                                            const ::ranking::v1::RankRequest* request,
                                            grpc::ServerWriter<::ranking::v1::RankPage>* writer) {
  rank_stream_calls_.fetch_add(1, std::memory_order_relaxed);
  const auto replica_ptr = replica_id_.load();
  const std::string& replica = *replica_ptr;
  const CallFault fault = decider_ ? decider_() : CallFault{};
  if (auto done = applyFault(*ctx, replica, fault)) {
    return *done;
  }
  if (request->page_size() < 0) {
    return fail(*ctx, replica,
                grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "page_size must be >= 0"));
  }
  grpc::Status error;
  auto result = rank(*request, error);
  if (!result) {
    return fail(*ctx, replica, error);
  }
  // After the checks, as in Rank: errors stay trailers-only.
  ctx->AddInitialMetadata(kReplicaIdMetadata, replica);
  const std::size_t page_size = static_cast<std::size_t>(
      request->page_size() == 0 ? options_.default_page_size : request->page_size());
  const std::size_t total = result->items.size();
  // An empty feed is still one (empty, last) page so the client always learns `degraded`.
  const std::size_t pages = std::max<std::size_t>(1, (total + page_size - 1) / page_size);
  for (std::size_t page = 0; page < pages; ++page) {
    const std::size_t begin = page * page_size;
    const std::size_t end = std::min(total, begin + page_size);
    ::ranking::v1::RankPage msg;
    fillItems(result->items, begin, end, msg.mutable_items());
    msg.set_degraded(result->degraded);
    msg.set_replica_id(replica);
    msg.set_page(static_cast<int>(page));
    msg.set_last(page + 1 == pages);
    if (!slowBody(*ctx, fault, msg.ByteSizeLong())) {
      return endedEarly(*ctx, "stream ended during slow body");
    }
    if (!writer->Write(msg)) {
      return endedEarly(*ctx, "client went away");
    }
    pages_sent_.fetch_add(1, std::memory_order_relaxed);
    if (fault.kind == CallFault::Kind::Reset) {
      // Reset after the first page: the client has seen part of the feed, then RST_STREAM.
      ctx->TryCancel();
      return grpc::Status(grpc::StatusCode::CANCELLED, "injected reset");
    }
  }
  return grpc::Status::OK;
}

grpc::Status ReplicaStatsImpl::Get(grpc::ServerContext* /*ctx*/,
                                   const ::ranking::v1::StatsRequest* /*request*/,
                                   ::ranking::v1::ReplicaStatsResponse* response) {
  const ServiceCounters c = service_.counters();
  response->set_replica_id(service_.replicaId());
  response->set_rank_calls(c.rank_calls);
  response->set_rank_stream_calls(c.rank_stream_calls);
  response->set_cancelled_calls(c.cancelled_calls);
  response->set_pages_sent(c.pages_sent);
  return grpc::Status::OK;
}

}  // namespace bulwark::examples::ranking
