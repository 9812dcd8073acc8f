#include "examples/ranking/ranking_server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>
#include <spdlog/spdlog.h>

#include "examples/common/replica_id.h"

namespace bulwark::examples::ranking {

Result<std::unique_ptr<RankingServer>> RankingServer::start(ServerOptions options,
                                                            CallFaultDecider decider) {
  std::unique_ptr<RankingServer> s(new RankingServer());
  s->options_ = std::move(options);
  const ServerOptions& o = s->options_;

  auto store = makeFeatureStore(o.feature_store, o.feature_store_timeout_ms);
  if (!store) {
    return store.status();
  }
  s->store_ = std::move(*store);
  for (const auto& tenant_id : defaultTenants()) {
    SeededTenant tenant = seedTenant(tenant_id, o.seed);
    s->catalog_.addTenant(tenant_id, tenant.items);
    if (Status loaded = s->store_->load(tenant); !loaded) {
      // Start anyway: the ranker serves degraded feeds until the store answers.
      spdlog::warn("feature store {}: seeding {} failed: {}", s->store_->describe(), tenant_id,
                   loaded.message());
    }
  }
  s->model_ = std::make_unique<ModelRuntime>(o.model);
  s->ranker_ = std::make_unique<Ranker>(s->catalog_, *s->store_, *s->model_, o.ranker);
  ServiceOptions service_options;
  service_options.replica_id = o.replica_id;
  s->service_ = std::make_unique<RankingServiceImpl>(*s->ranker_, std::move(decider), s->drain_,
                                                     service_options);
  s->stats_service_ = std::make_unique<ReplicaStatsImpl>(*s->service_);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  grpc::ResourceQuota quota("ranking-server");
  quota.SetMaxThreads(o.max_threads);
  builder.SetResourceQuota(quota);
  builder.AddListeningPort(o.host + ":" + std::to_string(o.port), grpc::InsecureServerCredentials(),
                           &s->port_);
  builder.RegisterService(s->service_.get());
  builder.RegisterService(s->stats_service_.get());
  s->server_ = builder.BuildAndStart();
  if (!s->server_ || s->port_ == 0) {
    return Status::error("cannot listen on " + o.host + ":" + std::to_string(o.port));
  }
  s->replica_id_ = resolveReplicaId(o.replica_id, s->port_);
  s->service_->setReplicaId(s->replica_id_);
  // Register the service name; later flips use the all-services overload, which updates "" and
  // this name together (setting both one by one would send Watch clients two updates).
  s->server_->GetHealthCheckService()->SetServingStatus(kRankingServiceName, true);
  return s;
}

RankingServer::~RankingServer() { shutdown(std::chrono::milliseconds(0)); }

void RankingServer::setServing(bool serving) {
  if (auto* health = server_ ? server_->GetHealthCheckService() : nullptr) {
    health->SetServingStatus(serving);
  }
}

void RankingServer::shutdown(std::chrono::milliseconds grace) {
  if (shut_down_ || !server_) {
    return;
  }
  shut_down_ = true;
  // Health first, so probes and bulwark's health checks see NOT_SERVING while calls drain;
  // HealthCheckServiceInterface::Shutdown also makes later SetServingStatus calls no-ops.
  if (auto* health = server_->GetHealthCheckService()) {
    health->Shutdown();
  }
  // Shutdown(deadline) refuses new calls (GOAWAY), lets in-flight ones finish until the deadline
  // and then cancels the rest; hung handlers see the cancellation and return.
  server_->Shutdown(std::chrono::system_clock::now() + grace);
  drain_.stop();
  model_->shutdown();
  server_->Wait();
}

}  // namespace bulwark::examples::ranking
