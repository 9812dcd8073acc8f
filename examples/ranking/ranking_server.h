#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/result.h"
#include "examples/ranking/catalog.h"
#include "examples/ranking/drain_signal.h"
#include "examples/ranking/feature_store.h"
#include "examples/ranking/model.h"
#include "examples/ranking/ranker.h"
#include "examples/ranking/ranking_service.h"

namespace grpc {
class Server;
}

namespace bulwark::examples::ranking {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;            // 0 = pick a free port; see RankingServer::port()
  std::string replica_id;  // empty = "HOSTNAME:PORT" once bound (examples::resolveReplicaId)
  std::string feature_store = "memory";
  int feature_store_timeout_ms = 25;
  int max_threads = 256;  // grpc++ sync handler threads; beyond this calls get RESOURCE_EXHAUSTED
  ModelOptions model;
  RankerOptions ranker;
  SeedOptions seed;
};

/**
 * One ranking replica: seeds the tenants' catalog and feature store, then serves
 * ranking.v1.RankingService and grpc.health.v1.Health (grpc++'s default health service, per
 * service name and for "") and ranking.v1.ReplicaStats (the replica's call counters) over h2c on
 * host:port.
 * Thread: start()/shutdown() on main; setServing() from any thread (the control server).
 */
class RankingServer {
public:
  /** Seeds data and starts serving; a feature store that is down at start only logs a warning. */
  static Result<std::unique_ptr<RankingServer>> start(ServerOptions options,
                                                      CallFaultDecider decider);
  ~RankingServer();

  int port() const { return port_; }
  const std::string& replicaId() const { return replica_id_; }
  std::string featureStoreDescription() const { return store_->describe(); }

  /** Flips grpc.health.v1 for "" and ranking.v1.RankingService (ignored once draining). */
  void setServing(bool serving);

  /**
   * Graceful drain: health goes NOT_SERVING, new calls are refused, in-flight calls get `grace`
   * to finish, then remaining calls (hangs) are cancelled. Idempotent.
   */
  void shutdown(std::chrono::milliseconds grace);

private:
  RankingServer() = default;

  ServerOptions options_;
  Catalog catalog_;
  FeatureStorePtr store_;
  std::unique_ptr<ModelRuntime> model_;
  std::unique_ptr<Ranker> ranker_;
  DrainSignal drain_;
  std::unique_ptr<RankingServiceImpl> service_;
  std::unique_ptr<ReplicaStatsImpl> stats_service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::string replica_id_;
  bool shut_down_ = false;
};

}  // namespace bulwark::examples::ranking
