// ranking-client: load generator and probe for ranking-server (tests, demo, benchmarks).
#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <mutex>
#include <set>
#include <thread>

#include <CLI/CLI.hpp>
#include <grpcpp/grpcpp.h>

#include "examples/ranking/load_report.h"
#include "health.grpc.pb.h"
#include "ranking.grpc.pb.h"

namespace {

namespace rk = bulwark::examples::ranking;
using Clock = std::chrono::steady_clock;

// Set by SIGTERM/SIGINT: no new calls start, calls in flight finish and the report is printed, so
// a test can run load for as long as its scenario takes and then collect the numbers.
std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "used from a signal handler");

extern "C" void onStopSignal(int /*signal*/) { g_stop.store(true, std::memory_order_relaxed); }

const char* codeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "INVALID_CODE";
  }
}

std::string replicaOf(const grpc::ClientContext& ctx) {
  for (const auto* md : {&ctx.GetServerInitialMetadata(), &ctx.GetServerTrailingMetadata()}) {
    auto it = md->find("x-replica-id");
    if (it != md->end()) {
      return std::string(it->second.data(), it->second.size());
    }
  }
  return "unknown";
}

struct Options {
  std::string target;
  std::string method = "rank";
  std::string tenant = "tenantA";
  std::string user;
  int limit = 20;
  int page_size = 0;
  int concurrency = 1;
  long count = 1;
  double duration_s = 0;
  double rate = 0;
  int deadline_ms = 0;
  int cancel_after_pages = 0;
  bool json = false;
  std::string health_service = "ranking.v1.RankingService";
  std::string tls_ca;           // PEM roots: speak TLS to the target (e.g. a TLS bulwark listener)
  std::string tls_server_name;  // the name to verify (and send as SNI) instead of the target's
};

// Request i of the run: the tenant ("mixed" alternates like the seed's locustfile) and user.
ranking::v1::RankRequest makeRequest(const Options& o, std::uint64_t i) {
  ranking::v1::RankRequest req;
  if (o.tenant == "mixed") {
    req.set_tenant_id(i % 2 == 0 ? "tenantA" : "tenantB");
  } else {
    req.set_tenant_id(o.tenant);
  }
  req.set_user_id(o.user.empty() ? "user-" + std::to_string(i % 100) : o.user);
  req.set_limit(o.limit);
  req.set_page_size(o.page_size);
  return req;
}

void applyDeadline(const Options& o, grpc::ClientContext& ctx) {
  if (o.deadline_ms > 0) {
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(o.deadline_ms));
  }
}

// One synchronous call of the selected method, recorded into `report`.
void callOnce(const Options& o, ranking::v1::RankingService::Stub& stub, std::uint64_t i,
              rk::LoadReport& report) {
  grpc::ClientContext ctx;
  applyDeadline(o, ctx);
  const auto req = makeRequest(o, i);
  const auto start = Clock::now();
  bool degraded = false;
  grpc::Status status;
  if (o.method == "stream") {
    auto reader = stub.RankStream(&ctx, req);
    ranking::v1::RankPage page;
    int pages = 0;
    while (reader->Read(&page)) {
      degraded = degraded || page.degraded();
      if (++pages == o.cancel_after_pages) {
        // The client gives up mid-stream: grpc++ sends RST_STREAM(CANCEL); Finish() reports
        // CANCELLED once the stream is torn down.
        ctx.TryCancel();
      }
    }
    status = reader->Finish();
  } else {
    ranking::v1::RankResponse resp;
    status = stub.Rank(&ctx, req, &resp);
    degraded = resp.degraded();
  }
  report.record(Clock::now() - start, codeName(status.error_code()), replicaOf(ctx), degraded);
}

// Closed loop: `concurrency` threads, each issuing its next call when the previous one ends.
rk::LoadReport runClosedLoop(const Options& o, const std::shared_ptr<grpc::Channel>& channel) {
  std::atomic<std::uint64_t> next{0};
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(o.duration_s));
  std::vector<rk::LoadReport> reports(static_cast<std::size_t>(o.concurrency));
  std::vector<std::thread> threads;
  for (int t = 0; t < o.concurrency; ++t) {
    threads.emplace_back([&, t] {
      auto stub = ranking::v1::RankingService::NewStub(channel);
      while (true) {
        const std::uint64_t i = next.fetch_add(1);
        if (g_stop.load(std::memory_order_relaxed) ||
            (o.duration_s > 0 ? Clock::now() >= end : i >= static_cast<std::uint64_t>(o.count))) {
          break;
        }
        callOnce(o, *stub, i, reports[static_cast<std::size_t>(t)]);
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  rk::LoadReport total;
  for (const auto& r : reports) {
    total.merge(r);
  }
  total.setElapsed(Clock::now() - start);
  return total;
}

// Open loop: unary calls started at `rate` per second regardless of completions (so a slow
// server shows up as latency, not as a lower offered load), at most `concurrency` in flight;
// calls that would exceed that are counted as CLIENT_OVERLOADED instead of being sent.
rk::LoadReport runOpenLoop(const Options& o, const std::shared_ptr<grpc::Channel>& channel) {
  struct Call {
    grpc::ClientContext ctx;
    ranking::v1::RankRequest req;
    ranking::v1::RankResponse resp;
    Clock::time_point start;
  };
  auto stub = ranking::v1::RankingService::NewStub(channel);
  std::mutex mu;
  std::condition_variable cv;
  std::set<Call*> in_flight;
  rk::LoadReport report;
  const auto start = Clock::now();
  const double duration = o.duration_s > 0 ? o.duration_s : static_cast<double>(o.count) / o.rate;
  const auto total = static_cast<std::uint64_t>(duration * o.rate);
  for (std::uint64_t i = 0; i < total && !g_stop.load(std::memory_order_relaxed); ++i) {
    std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(
                                              std::chrono::duration<double>(i / o.rate)));
    std::unique_lock lock(mu);
    if (in_flight.size() >= static_cast<std::size_t>(o.concurrency)) {
      report.record(std::chrono::nanoseconds(0), "CLIENT_OVERLOADED", "none", false);
      continue;
    }
    auto* call = new Call();
    in_flight.insert(call);
    lock.unlock();
    call->req = makeRequest(o, i);
    applyDeadline(o, call->ctx);
    call->start = Clock::now();
    stub->async()->Rank(&call->ctx, &call->req, &call->resp, [&, call](grpc::Status status) {
      const auto latency = Clock::now() - call->start;
      std::lock_guard done(mu);
      report.record(latency, codeName(status.error_code()), replicaOf(call->ctx),
                    call->resp.degraded());
      in_flight.erase(call);
      delete call;
      cv.notify_all();
    });
  }
  std::unique_lock lock(mu);
  // Give stragglers a bounded grace, then cancel them (a hung server must not hang the client).
  if (!cv.wait_for(lock, std::chrono::seconds(2), [&] { return in_flight.empty(); })) {
    for (Call* call : in_flight) {
      call->ctx.TryCancel();
    }
    cv.wait(lock, [&] { return in_flight.empty(); });
  }
  report.setElapsed(Clock::now() - start);
  return report;
}

int runHealth(const Options& o, const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(o.deadline_ms > 0 ? o.deadline_ms : 1000));
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(o.health_service);
  grpc::health::v1::HealthCheckResponse resp;
  auto status = stub->Check(&ctx, req, &resp);
  const std::string result =
      status.ok() ? grpc::health::v1::HealthCheckResponse::ServingStatus_Name(resp.status())
                  : codeName(status.error_code());
  if (o.json) {
    std::printf("{\"service\":\"%s\",\"status\":\"%s\",\"replica\":\"%s\"}\n",
                o.health_service.c_str(), result.c_str(), replicaOf(ctx).c_str());
  } else {
    std::printf("%s\n", result.c_str());
  }
  return status.ok() && resp.status() == grpc::health::v1::HealthCheckResponse::SERVING ? 0 : 1;
}

int runStats(const Options& o, const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = ranking::v1::ReplicaStats::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(o.deadline_ms > 0 ? o.deadline_ms : 1000));
  ranking::v1::ReplicaStatsResponse resp;
  auto status = stub->Get(&ctx, ranking::v1::StatsRequest(), &resp);
  if (!status.ok()) {
    std::printf(o.json ? "{\"status\":\"%s\"}\n" : "%s\n", codeName(status.error_code()));
    return 1;
  }
  if (o.json) {
    std::printf(
        "{\"status\":\"OK\",\"replica\":\"%s\",\"rank_calls\":%lld,\"rank_stream_calls\":%lld,"
        "\"cancelled_calls\":%lld,\"pages_sent\":%lld}\n",
        resp.replica_id().c_str(), static_cast<long long>(resp.rank_calls()),
        static_cast<long long>(resp.rank_stream_calls()),
        static_cast<long long>(resp.cancelled_calls()), static_cast<long long>(resp.pages_sent()));
  } else {
    std::printf("replica %s: rank %lld, rank_stream %lld, cancelled %lld, pages %lld\n",
                resp.replica_id().c_str(), static_cast<long long>(resp.rank_calls()),
                static_cast<long long>(resp.rank_stream_calls()),
                static_cast<long long>(resp.cancelled_calls()),
                static_cast<long long>(resp.pages_sent()));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"ranking-client: calls ranking.v1.RankingService and reports latency"};
  app.add_option("--target", o.target, "HOST:PORT of ranking-server or bulwark")->required();
  app.add_option("--method", o.method, "rank | stream | health | stats")
      ->check(CLI::IsMember({"rank", "stream", "health", "stats"}));
  app.add_option("--tenant", o.tenant, "tenantA | tenantB | mixed (alternate) | any other id");
  app.add_option("--user", o.user, "user id (default: user-<i % 100>)");
  app.add_option("--limit", o.limit, "items per feed (0 = server default 20)");
  app.add_option("--page-size", o.page_size, "RankStream page size (0 = server default)");
  app.add_option("--concurrency", o.concurrency, "threads (closed loop) or max in flight (rate)")
      ->check(CLI::Range(1, 10000));
  app.add_option("--count", o.count, "total calls (ignored with --duration-s)")
      ->check(CLI::Range(1L, 100'000'000L));
  app.add_option("--duration-s", o.duration_s, "run for this long instead of --count")
      ->check(CLI::Range(0.0, 86400.0));
  app.add_option("--rate", o.rate, "open loop: unary calls per second (0 = closed loop)")
      ->check(CLI::Range(0.0, 1e6));
  app.add_option("--deadline-ms", o.deadline_ms, "per-call deadline (0 = none)")
      ->check(CLI::Range(0, 3'600'000));
  app.add_option("--cancel-after-pages", o.cancel_after_pages,
                 "stream: cancel each call after reading this many pages (0 = never)")
      ->check(CLI::Range(0, 100000));
  app.add_option("--health-service", o.health_service, "service name for --method health");
  app.add_flag("--json", o.json, "print one JSON object instead of text");
  app.add_option("--tls-ca", o.tls_ca, "PEM CA file: connect over TLS, verifying with it")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-server-name", o.tls_server_name,
                 "with --tls-ca: the server name to verify and send as SNI");
  CLI11_PARSE(app, argc, argv);

  struct sigaction stop_action {};
  stop_action.sa_handler = onStopSignal;
  sigemptyset(&stop_action.sa_mask);
  sigaction(SIGTERM, &stop_action, nullptr);
  sigaction(SIGINT, &stop_action, nullptr);

  // One channel for every thread, with its own subchannel pool: all calls of a run share one
  // HTTP/2 connection, which is what per-request balancing behind a proxy has to cope with.
  grpc::ChannelArguments channel_args;
  channel_args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!o.tls_ca.empty()) {
    std::ifstream in(o.tls_ca);
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    credentials = grpc::SslCredentials(ssl);
    if (!o.tls_server_name.empty()) {
      channel_args.SetSslTargetNameOverride(o.tls_server_name);
    }
  }
  auto channel = grpc::CreateCustomChannel(o.target, credentials, channel_args);
  if (o.method == "health") {
    return runHealth(o, channel);
  }
  if (o.method == "stats") {
    return runStats(o, channel);
  }
  const rk::LoadReport report =
      o.rate > 0 && o.method == "rank" ? runOpenLoop(o, channel) : runClosedLoop(o, channel);
  std::fputs((o.json ? report.toJson() + "\n" : report.toText()).c_str(), stdout);
  return report.calls() > 0 && report.count("OK") == report.calls() ? 0 : 2;
}
