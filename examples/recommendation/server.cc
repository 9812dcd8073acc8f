// recommendation-server: one replica of the recommendation example backend (after recsys-service,
// seed 003). See README.md.
#include <cstdio>
#include <memory>
#include <sstream>

#include <CLI/CLI.hpp>
#include <event2/event.h>

#include "examples/common/fault_control_server.h"
#include "examples/common/fault_injector.h"
#include "examples/common/http_server.h"
#include "examples/common/replica_id.h"
#include "examples/recommendation/recommendation_service.h"
#include "examples/recommendation/recommender.h"

namespace {

namespace ex = bulwark::examples;
namespace rc = bulwark::examples::recommendation;

int run(int argc, char** argv) {
  ex::HttpServerOptions server_options;
  ex::FaultSpec faults;
  rc::RecommenderOptions model_options;
  rc::RecommendationServiceOptions service_options;
  int control_port = 0;
  int drain_timeout_ms = 5000;
  uint64_t seed = 0;
  std::string tenants = "demo,tenantA,tenantB";

  CLI::App app{
      "recommendation-server: HTTP/1.1 JSON recommendations example backend "
      "(after recsys-service)"};
  app.add_option("--port", server_options.port, "port on 127.0.0.1 (0 = any free port)")
      ->check(CLI::Range(0, 65535));
  ex::addReplicaIdFlag(app, server_options.replica_id);
  ex::addControlPortFlag(app, control_port);
  app.add_option("--tenants", tenants, "comma-separated tenants with a catalog");
  app.add_option("--items-per-tenant", model_options.items_per_tenant, "catalog size per tenant")
      ->check(CLI::Range(size_t{1}, size_t{2'000'000}));
  app.add_option("--dimension", model_options.dimension, "embedding dimension")
      ->check(CLI::Range(size_t{1}, size_t{1024}));
  app.add_option("--model-seed", model_options.seed, "seed of the catalogs (same on all replicas)");
  app.add_option("--max-inflight", service_options.max_inflight, "requests scoring at once")
      ->envname("RECSYS_BACKPRESSURE_MAX_INFLIGHT")
      ->check(CLI::Range(size_t{1}, size_t{100'000}));
  app.add_option("--max-queue", service_options.max_queue,
                 "requests waiting for a slot; beyond: 503 + Retry-After")
      ->envname("RECSYS_BACKPRESSURE_MAX_QUEUE")
      ->check(CLI::Range(size_t{0}, size_t{1'000'000}));
  app.add_option("--workers", service_options.workers, "scoring threads")
      ->check(CLI::Range(1, 256));
  app.add_option("--tenant-rps", service_options.tenant_rps,
                 "per-tenant dev rate limit in requests/s (0 = off); beyond: 429 + Retry-After")
      ->check(CLI::Range(0.0, 1e9));
  app.add_option("--tenant-burst", service_options.tenant_burst,
                 "token bucket size (0 = max(1, tenant-rps))")
      ->check(CLI::Range(0.0, 1e9));
  app.add_option("--fetch-latency-ms", service_options.fetch_latency_ms,
                 "per-request signal/config lookup time, holding the in-flight slot")
      ->check(CLI::Range(0, 60'000));
  app.add_option("--retry-after-s", service_options.retry_after_s, "Retry-After seconds on 503")
      ->check(CLI::Range(0, 3600));
  app.add_option("--drain-timeout-ms", drain_timeout_ms,
                 "on SIGTERM, how long in-flight requests may take")
      ->check(CLI::Range(0, 600'000));
  app.add_option("--seed", seed, "random seed of the fault dice (0 = random)");
  ex::addFaultFlags(app, faults);
  CLI11_PARSE(app, argc, argv);
  server_options.drain_timeout = std::chrono::milliseconds(drain_timeout_ms);
  server_options.seed = seed;
  model_options.tenants.clear();
  std::stringstream list(tenants);
  for (std::string tenant; std::getline(list, tenant, ',');) {
    if (!tenant.empty()) {
      model_options.tenants.push_back(tenant);
    }
  }

  ex::enableLibeventThreads();  // workers hand results back to the loop
  rc::Recommender recommender(model_options);
  std::unique_ptr<event_base, decltype(&event_base_free)> base(event_base_new(), &event_base_free);
  ex::FaultInjector injector(faults);
  int exit_code = 0;
  {
    rc::RecommendationService service(base.get(), recommender, service_options);
    auto server =
        ex::HttpServer::create(base.get(), injector, server_options,
                               [&service](const std::shared_ptr<ex::HttpExchange>& exchange) {
                                 service.handle(exchange);
                               });
    if (!server) {
      std::fprintf(stderr, "recommendation-server: %s\n", server.error().c_str());
      return 1;
    }
    std::unique_ptr<ex::FaultControlServer> control;
    if (control_port >= 0) {
      auto started = ex::FaultControlServer::start(
          injector, control_port, [&service](bool serving) { service.setServing(serving); });
      if (!started) {
        std::fprintf(stderr, "recommendation-server: %s\n", started.error().c_str());
        return 1;
      }
      control = std::move(*started);
      ex::printControlPortLine(control->port());
    }
    std::fprintf(stderr,
                 "recommendation-server: replica %s, %zu tenants x %zu items, max in flight %zu, "
                 "max queue %zu\n",
                 (*server)->replicaId().c_str(), model_options.tenants.size(),
                 model_options.items_per_tenant, service_options.max_inflight,
                 service_options.max_queue);
    ex::printListeningLine((*server)->port());
    exit_code = ex::runUntilSignal(base.get(), **server, [&service] { service.setServing(false); });
    if (control) {
      control->stop();
    }
  }
  std::fprintf(stderr, "recommendation-server: drained\n");
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) { return run(argc, argv); }
