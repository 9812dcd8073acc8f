// task-server: one replica of the task example backend (after EyeFlow, seed 001). See README.md.
#include <cstdio>
#include <memory>

#include <CLI/CLI.hpp>
#include <event2/event.h>

#include "examples/common/fault_control_server.h"
#include "examples/common/fault_injector.h"
#include "examples/common/http_server.h"
#include "examples/common/replica_id.h"
#include "examples/task/task_service.h"
#include "examples/task/task_store.h"

namespace {

namespace ex = bulwark::examples;
namespace tk = bulwark::examples::task;

int run(int argc, char** argv) {
  ex::HttpServerOptions server_options;
  ex::FaultSpec faults;
  tk::TaskServiceOptions service_options;
  tk::TaskStore::Options store_options;
  int control_port = 0;
  int drain_timeout_ms = 5000;

  CLI::App app{"task-server: HTTP/1.1 JSON task API example backend (after EyeFlow)"};
  app.add_option("--port", server_options.port, "port on 127.0.0.1 (0 = any free port)")
      ->check(CLI::Range(0, 65535));
  ex::addReplicaIdFlag(app, server_options.replica_id);
  ex::addControlPortFlag(app, control_port);
  app.add_option("--data-file", store_options.data_file,
                 "append-only task log, replayed at start; replicas may share one file");
  app.add_option("--claim-timeout-ms", store_options.claim_timeout_ms,
                 "how long an unfinished Idempotency-Key claim blocks its key")
      ->check(CLI::Range(int64_t{1}, int64_t{86'400'000}));
  app.add_option("--latency-scale", service_options.latency_scale,
                 "multiplies the execution-time model (p50 45 ms, p90 85 ms, p99 120 ms); 0 = off")
      ->check(CLI::Range(0.0, 1000.0));
  app.add_option("--max-concurrent", service_options.max_concurrent,
                 "concurrent task executions before 503 + Retry-After")
      ->check(CLI::Range(1, 1'000'000));
  app.add_option("--retry-after-s", service_options.retry_after_s,
                 "Retry-After seconds on 503 (capacity) and 409 (key in progress)")
      ->check(CLI::Range(0, 3600));
  app.add_option("--drain-timeout-ms", drain_timeout_ms,
                 "on SIGTERM, how long in-flight requests may take")
      ->check(CLI::Range(0, 600'000));
  app.add_option("--seed", service_options.seed, "random seed of latency and faults (0 = random)");
  ex::addFaultFlags(app, faults);
  CLI11_PARSE(app, argc, argv);
  server_options.drain_timeout = std::chrono::milliseconds(drain_timeout_ms);
  server_options.seed = service_options.seed;

  ex::enableLibeventThreads();
  auto store = tk::TaskStore::open(store_options);
  if (!store) {
    std::fprintf(stderr, "task-server: %s\n", store.error().c_str());
    return 1;
  }
  if ((*store)->skippedRecords() > 0) {
    std::fprintf(stderr, "task-server: skipped %zu unreadable log records\n",
                 (*store)->skippedRecords());
  }
  std::unique_ptr<event_base, decltype(&event_base_free)> base(event_base_new(), &event_base_free);
  ex::FaultInjector injector(faults);
  int exit_code = 0;
  {
    tk::TaskService service(base.get(), **store, service_options);
    auto server =
        ex::HttpServer::create(base.get(), injector, server_options,
                               [&service](const std::shared_ptr<ex::HttpExchange>& exchange) {
                                 service.handle(exchange);
                               });
    if (!server) {
      std::fprintf(stderr, "task-server: %s\n", server.error().c_str());
      return 1;
    }
    std::unique_ptr<ex::FaultControlServer> control;
    if (control_port >= 0) {
      auto started = ex::FaultControlServer::start(
          injector, control_port, [&service](bool serving) { service.setServing(serving); });
      if (!started) {
        std::fprintf(stderr, "task-server: %s\n", started.error().c_str());
        return 1;
      }
      control = std::move(*started);
      ex::printControlPortLine(control->port());
    }
    std::fprintf(stderr, "task-server: replica %s, %zu tasks loaded, latency scale %g\n",
                 (*server)->replicaId().c_str(), (*store)->size(), service_options.latency_scale);
    ex::printListeningLine((*server)->port());
    exit_code = ex::runUntilSignal(base.get(), **server, [&service] { service.setServing(false); });
    if (control) {
      control->stop();
    }
  }
  std::fprintf(stderr, "task-server: drained\n");
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) { return run(argc, argv); }
