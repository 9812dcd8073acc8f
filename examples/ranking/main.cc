// ranking-server: one replica of the ranking example backend (see README.md).
#include <signal.h>

#include <cstdio>
#include <memory>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "examples/common/fault_control_server.h"
#include "examples/common/fault_injector.h"
#include "examples/common/fault_spec.h"
#include "examples/common/replica_id.h"
#include "examples/ranking/fault_adapter.h"
#include "examples/ranking/ranking_server.h"

namespace {

namespace ex = bulwark::examples;
namespace rk = bulwark::examples::ranking;

int run(int argc, char** argv) {
  rk::ServerOptions options;
  long model_cost_us = options.model.cost.count();
  int drain_timeout_ms = 5000;
  int control_port = 0;
  ex::FaultSpec faults;

  CLI::App app{"ranking-server: gRPC ranking.v1.RankingService example backend"};
  app.add_option("--host", options.host,
                 "address to listen on (loopback by default; e.g. 127.0.0.2 for DNS tests)");
  app.add_option("--port", options.port, "gRPC port on --host (0 = any free port)");
  ex::addReplicaIdFlag(app, options.replica_id);
  ex::addControlPortFlag(app, control_port);
  ex::addFaultFlags(app, faults);
  app.add_option("--feature-store", options.feature_store,
                 "memory | redis://HOST:PORT | unix:///path/redis.sock");
  app.add_option("--feature-store-timeout-ms", options.feature_store_timeout_ms,
                 "Redis connect and command timeout; slower answers degrade the feed")
      ->check(CLI::Range(1, 10000));
  app.add_option("--model-cost-us", model_cost_us, "median model inference time per request")
      ->check(CLI::Range(0L, 10'000'000L));
  app.add_option("--model-jitter", options.model.jitter_sigma,
                 "log-normal sigma of the inference time (p99 = cost * exp(2.326 * sigma))")
      ->check(CLI::Range(0.0, 2.0));
  app.add_option("--model-slots", options.model.slots, "concurrent inferences per replica")
      ->check(CLI::Range(1, 1024));
  app.add_flag("--model-burn-cpu", options.model.burn_cpu,
               "spend the inference time computing instead of waiting (CPU-bound replica)");
  app.add_option("--candidate-window", options.ranker.candidate_window,
                 "newest items per tenant considered for ranking")
      ->check(CLI::Range(1, 100000));
  app.add_option("--items-per-tenant", options.seed.items_per_tenant, "seeded catalog size")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--max-threads", options.max_threads, "gRPC handler threads")
      ->check(CLI::Range(4, 100000));
  app.add_option("--drain-timeout-ms", drain_timeout_ms,
                 "on SIGTERM, how long in-flight calls may take before they are cancelled")
      ->check(CLI::Range(0, 600000));
  CLI11_PARSE(app, argc, argv);
  // stdout carries only the "listening on" line that scripts and tests wait for.
  spdlog::set_default_logger(spdlog::stderr_color_mt("ranking-server"));
  options.model.cost = std::chrono::microseconds(model_cost_us);

  // hiredis write()s to its socket: a Redis that died must be an error, not a SIGPIPE death.
  signal(SIGPIPE, SIG_IGN);
  // Block the stop signals before any thread exists so that only sigwait() below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  ex::FaultInjector injector(faults);
  auto server = rk::RankingServer::start(options, rk::makeCallFaultDecider(injector));
  if (!server) {
    spdlog::error("{}", server.error());
    return 1;
  }
  std::unique_ptr<ex::FaultControlServer> control;
  if (control_port >= 0) {
    rk::RankingServer* raw = server->get();
    auto started = ex::FaultControlServer::start(injector, control_port,
                                                 [raw](bool serving) { raw->setServing(serving); });
    if (!started) {
      spdlog::error("control endpoint: {}", started.error());
      return 1;
    }
    control = std::move(*started);
    ex::printControlPortLine(control->port());
  }
  spdlog::info("replica {} feature store {} model cost {}us", (*server)->replicaId(),
               (*server)->featureStoreDescription(), model_cost_us);
  if (options.host == "127.0.0.1") {
    ex::printListeningLine((*server)->port());
  } else {
    // printListeningLine() names 127.0.0.1; say the address actually bound.
    std::printf("listening on %s:%d\n", options.host.c_str(), (*server)->port());
    std::fflush(stdout);
  }

  int sig = 0;
  sigwait(&stop_signals, &sig);
  spdlog::info("signal {}: draining for up to {} ms", sig, drain_timeout_ms);
  (*server)->shutdown(std::chrono::milliseconds(drain_timeout_ms));
  if (control) {
    control->stop();
  }
  spdlog::info("drained");
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return run(argc, argv); }
