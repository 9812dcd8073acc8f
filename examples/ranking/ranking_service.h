#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "examples/ranking/drain_signal.h"
#include "examples/ranking/ranker.h"
#include "ranking.grpc.pb.h"

namespace bulwark::examples::ranking {

inline constexpr char kRankingServiceName[] = "ranking.v1.RankingService";
inline constexpr char kReplicaIdMetadata[] = "x-replica-id";
inline constexpr char kPushbackMetadata[] = "grpc-retry-pushback-ms";

/** What the fault knobs decided for one call, in gRPC terms. Thread: value type, any. */
struct CallFault {
  enum class Kind { None, Error, Hang, Reset, Crash };
  Kind kind = Kind::None;
  std::chrono::nanoseconds latency{0};                    // added before anything else happens
  grpc::StatusCode code = grpc::StatusCode::UNAVAILABLE;  // for Error
  std::optional<int> pushback_ms;  // grpc-retry-pushback-ms trailer for Error
  // Slow body: each message is held back for its size / rate before it is sent.
  std::int64_t slow_body_bytes_per_sec = 0;
  int crash_exit_code = 70;  // for Crash
};

/** Decides the fault of one call; called once per call on the handler thread. */
using CallFaultDecider = std::function<CallFault()>;

/** Counters of one replica since start (ranking.v1.ReplicaStats). Thread: value type. */
struct ServiceCounters {
  std::int64_t rank_calls = 0;
  std::int64_t rank_stream_calls = 0;
  std::int64_t cancelled_calls = 0;
  std::int64_t pages_sent = 0;
};

struct ServiceOptions {
  std::string replica_id;
  int default_limit = 20;
  int max_limit = 200;
  int default_page_size = 10;
};

/**
 * ranking.v1.RankingService on grpc++'s synchronous API. Every response carries `x-replica-id`:
 * as initial metadata on a served call, as trailing metadata on an error. Errors (injected or
 * not) are trailers-only: initial metadata is added only once the call is served, since grpc++
 * would otherwise send it as HEADERS before the error status. Fault knobs apply before ranking:
 *  - Error: the configured status code, with `grpc-retry-pushback-ms` when set;
 *  - Hang: no answer until the call is cancelled (deadline, client) or the server drains;
 *  - Reset: ServerContext::TryCancel(), which sends RST_STREAM(CANCEL); the client sees
 *    CANCELLED. RankStream sends its first page before resetting (a reset mid-response);
 *  - Crash: _exit() without flushing or answering;
 *  - slow body: grpc++ cannot trickle the bytes of one message, so each message (the unary
 *    response, each RankPage) is held back for size / rate before it is sent.
 * Thread: any grpc++ handler thread; the ranker and decider are thread-safe.
 */
class RankingServiceImpl final : public ::ranking::v1::RankingService::Service {
public:
  RankingServiceImpl(Ranker& ranker, CallFaultDecider decider, DrainSignal& drain,
                     ServiceOptions options);

  /**
   * Replaces the replica name, e.g. once `--port 0` is bound and "HOST:PORT" is known.
   * Thread: any; calls in flight keep the name they started with.
   */
  void setReplicaId(std::string replica_id);

  grpc::Status Rank(grpc::ServerContext* ctx, const ::ranking::v1::RankRequest* request,
                    ::ranking::v1::RankResponse* response) override;
  grpc::Status RankStream(grpc::ServerContext* ctx, const ::ranking::v1::RankRequest* request,
                          grpc::ServerWriter<::ranking::v1::RankPage>* writer) override;

  /** Calls seen so far; each counter is exact, the set is not one atomic snapshot. */
  ServiceCounters counters() const;
  std::string replicaId() const { return *replica_id_.load(); }

private:
  // Runs the non-Reset part of a fault; returns a status when the call must end with it.
  std::optional<grpc::Status> applyFault(grpc::ServerContext& ctx, const std::string& replica,
                                         const CallFault& fault);
  grpc::Status fail(grpc::ServerContext& ctx, const std::string& replica, grpc::Status status);
  // Holds a message of `bytes` back for the slow-body rate; false when the call ended meanwhile.
  bool slowBody(grpc::ServerContext& ctx, const CallFault& fault, std::size_t bytes);
  Result<RankResult> rank(const ::ranking::v1::RankRequest& request, grpc::Status& error);
  // Ends a call that stopped early: counted as cancelled when the client side cancelled it.
  grpc::Status endedEarly(grpc::ServerContext& ctx, const char* message);

  Ranker& ranker_;
  CallFaultDecider decider_;
  DrainSignal& drain_;
  const ServiceOptions options_;
  std::atomic<std::shared_ptr<const std::string>> replica_id_;
  std::atomic<std::int64_t> rank_calls_{0};
  std::atomic<std::int64_t> rank_stream_calls_{0};
  std::atomic<std::int64_t> cancelled_calls_{0};
  std::atomic<std::int64_t> pages_sent_{0};
};

/**
 * ranking.v1.ReplicaStats: the counters of the replica's RankingServiceImpl, so tests and
 * benchmarks can ask each replica directly where calls went and whether a cancellation reached it.
 * Thread: any grpc++ handler thread.
 */
class ReplicaStatsImpl final : public ::ranking::v1::ReplicaStats::Service {
public:
  explicit ReplicaStatsImpl(const RankingServiceImpl& service) : service_(service) {}

  grpc::Status Get(grpc::ServerContext* ctx, const ::ranking::v1::StatsRequest* request,
                   ::ranking::v1::ReplicaStatsResponse* response) override;

private:
  const RankingServiceImpl& service_;
};

}  // namespace bulwark::examples::ranking
