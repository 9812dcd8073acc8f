// Integration tests: a real ranking-server process on port 0, a real gRPC client.
#include <signal.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "examples/common/testing/http_client.h"
#include "examples/common/testing/process.h"
#include "health.grpc.pb.h"
#include "ranking.grpc.pb.h"

namespace bulwark::examples::ranking {
namespace {

using namespace std::chrono_literals;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using ::ranking::v1::RankingService;
using ::ranking::v1::RankPage;
using ::ranking::v1::RankRequest;
using ::ranking::v1::RankResponse;

constexpr char kService[] = "ranking.v1.RankingService";

RankRequest request(const std::string& tenant, const std::string& user, int limit = 20,
                    int page_size = 0) {
  RankRequest r;
  r.set_tenant_id(tenant);
  r.set_user_id(user);
  r.set_limit(limit);
  r.set_page_size(page_size);
  return r;
}

std::string metadata(const std::multimap<grpc::string_ref, grpc::string_ref>& md,
                     const std::string& key) {
  auto it = md.find(key);
  return it == md.end() ? std::string() : std::string(it->second.data(), it->second.size());
}

void setDeadline(grpc::ClientContext& ctx, std::chrono::milliseconds timeout) {
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
}

struct StreamResult {
  std::vector<RankPage> pages;
  grpc::Status status;
};

class RankingServerTest : public ::testing::Test {
protected:
  void start(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {
        "--port", "0", "--control-port", "0", "--replica-id", "replica-under-test"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto spawned = testing::ChildProcess::spawn(RANKING_SERVER_PATH, args);
    ASSERT_TRUE(spawned.isOk()) << spawned.error();
    server_ = std::move(*spawned);
    auto port = server_->waitForListeningPort();
    ASSERT_TRUE(port.isOk()) << port.error();
    auto control = server_->waitForControlPort();
    ASSERT_TRUE(control.isOk()) << control.error();
    control_port_ = *control;
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(*port),
                                   grpc::InsecureChannelCredentials());
    stub_ = RankingService::NewStub(channel_);
    health_ = grpc::health::v1::Health::NewStub(channel_);
  }

  void setFaults(const std::string& json) {
    auto r = testing::httpRequest(control_port_, "POST", "/_fault",
                                  {{"Content-Type", "application/json"}}, json);
    ASSERT_TRUE(r.ok()) << r.detail;
    ASSERT_EQ(r.response.status, 200) << r.response.body;
  }

  grpc::Status rank(const RankRequest& req, RankResponse& resp,
                    std::chrono::milliseconds timeout = 2s, grpc::ClientContext* ctx = nullptr) {
    grpc::ClientContext local;
    grpc::ClientContext& c = ctx ? *ctx : local;
    setDeadline(c, timeout);
    return stub_->Rank(&c, req, &resp);
  }

  StreamResult rankStream(const RankRequest& req, std::chrono::milliseconds timeout = 2s) {
    grpc::ClientContext ctx;
    setDeadline(ctx, timeout);
    StreamResult out;
    auto reader = stub_->RankStream(&ctx, req);
    RankPage page;
    while (reader->Read(&page)) {
      out.pages.push_back(page);
    }
    out.status = reader->Finish();
    return out;
  }

  HealthCheckResponse::ServingStatus check(const std::string& service) {
    grpc::ClientContext ctx;
    setDeadline(ctx, 1s);
    HealthCheckRequest req;
    req.set_service(service);
    HealthCheckResponse resp;
    auto status = health_->Check(&ctx, req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return resp.status();
  }

  std::unique_ptr<testing::ChildProcess> server_;
  int control_port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<RankingService::Stub> stub_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

// Rank answers a full personalised feed of the caller's tenant, named by replica; RankStream
// pages the very same feed.
TEST_F(RankingServerTest, RankAndRankStreamServeTheSameFeed) {
  start();
  RankResponse resp;
  grpc::ClientContext ctx;
  auto status = rank(request("tenantA", "user-4"), resp, 2s, &ctx);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(resp.items_size(), 20);
  EXPECT_FALSE(resp.degraded());
  EXPECT_EQ(resp.replica_id(), "replica-under-test");
  EXPECT_EQ(metadata(ctx.GetServerInitialMetadata(), "x-replica-id"), "replica-under-test");
  for (int i = 1; i < resp.items_size(); ++i) {
    EXPECT_GE(resp.items(i - 1).score(), resp.items(i).score());
  }

  auto stream = rankStream(request("tenantA", "user-4", 20, 7));
  ASSERT_TRUE(stream.status.ok()) << stream.status.error_message();
  ASSERT_EQ(stream.pages.size(), 3u);
  EXPECT_EQ(stream.pages[0].items_size(), 7);
  EXPECT_EQ(stream.pages[2].items_size(), 6);
  EXPECT_FALSE(stream.pages[1].last());
  EXPECT_TRUE(stream.pages[2].last());
  int i = 0;
  for (const auto& page : stream.pages) {
    for (const auto& item : page.items()) {
      EXPECT_EQ(item.item_id(), resp.items(i++).item_id());
    }
  }
}

// Each tenant sees only its own items; bad requests get precise status codes.
TEST_F(RankingServerTest, TenantIsolationAndValidation) {
  start();
  for (const std::string tenant : {"tenantA", "tenantB"}) {
    RankResponse resp;
    ASSERT_TRUE(rank(request(tenant, "user-1", 200), resp).ok());
    ASSERT_EQ(resp.items_size(), 200);
    for (const auto& item : resp.items()) {
      ASSERT_TRUE(item.item_id().starts_with(tenant + ":")) << item.item_id();
    }
  }
  RankResponse resp;
  grpc::ClientContext ctx;
  EXPECT_EQ(rank(request("tenantC", "user-1"), resp, 2s, &ctx).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(metadata(ctx.GetServerTrailingMetadata(), "x-replica-id"), "replica-under-test");
  EXPECT_TRUE(ctx.GetServerInitialMetadata().empty());  // trailers-only
  EXPECT_EQ(rank(request("", "user-1"), resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(rank(request("tenantA", "user-1", 201), resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

// grpc.health.v1 Check and Watch report SERVING, follow a flip to NOT_SERVING and back.
TEST_F(RankingServerTest, HealthCheckWatchAndFlip) {
  start();
  EXPECT_EQ(check(""), HealthCheckResponse::SERVING);
  EXPECT_EQ(check(kService), HealthCheckResponse::SERVING);

  grpc::ClientContext watch_ctx;
  setDeadline(watch_ctx, 4s);
  HealthCheckRequest watch_req;
  watch_req.set_service(kService);
  auto watch = health_->Watch(&watch_ctx, watch_req);
  HealthCheckResponse update;
  ASSERT_TRUE(watch->Read(&update));
  EXPECT_EQ(update.status(), HealthCheckResponse::SERVING);

  auto flip = [this](bool serving) {
    auto r = testing::httpRequest(control_port_, "POST", "/_fault/health", {},
                                  serving ? R"({"serving":true})" : R"({"serving":false})");
    ASSERT_TRUE(r.ok()) << r.detail;
    ASSERT_EQ(r.response.status, 200) << r.response.body;
  };
  flip(false);
  ASSERT_TRUE(watch->Read(&update));
  EXPECT_EQ(update.status(), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(check(kService), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(check(""), HealthCheckResponse::NOT_SERVING);
  flip(true);
  ASSERT_TRUE(watch->Read(&update));
  EXPECT_EQ(update.status(), HealthCheckResponse::SERVING);
  EXPECT_EQ(check(kService), HealthCheckResponse::SERVING);
  watch_ctx.TryCancel();
  watch->Finish();

  grpc::ClientContext ctx;
  HealthCheckRequest unknown;
  unknown.set_service("no.such.Service");
  HealthCheckResponse resp;
  EXPECT_EQ(health_->Check(&ctx, unknown, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
}

// Feature store down (nothing listens on port 1): latest items by time, degraded, never an error.
TEST_F(RankingServerTest, DegradesToLatestItemsWhenFeatureStoreIsDown) {
  start({"--feature-store", "redis://127.0.0.1:1"});
  RankResponse resp;
  auto status = rank(request("tenantB", "user-2", 5), resp);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(resp.degraded());
  ASSERT_EQ(resp.items_size(), 5);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(resp.items(i).item_id(), "tenantB:item-" + std::to_string(4999 - i));
  }
  auto stream = rankStream(request("tenantB", "user-2", 5, 5));
  ASSERT_TRUE(stream.status.ok());
  ASSERT_EQ(stream.pages.size(), 1u);
  EXPECT_TRUE(stream.pages[0].degraded());
}

// Error knob: the configured code with pushback and replica metadata, then off again.
TEST_F(RankingServerTest, ErrorKnobReturnsConfiguredCodeWithPushback) {
  start();
  setFaults(R"({"error_rate":1,"grpc_pushback_ms":75})");
  RankResponse resp;
  grpc::ClientContext ctx;
  auto status = rank(request("tenantA", "user-1"), resp, 2s, &ctx);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(metadata(ctx.GetServerTrailingMetadata(), "grpc-retry-pushback-ms"), "75");
  EXPECT_EQ(metadata(ctx.GetServerTrailingMetadata(), "x-replica-id"), "replica-under-test");
  // Trailers-only: no initial metadata before the status, so a proxy can retry it safely.
  EXPECT_TRUE(ctx.GetServerInitialMetadata().empty());
  setFaults(R"({"error_rate":1,"error_grpc_code":8})");
  EXPECT_EQ(rank(request("tenantA", "user-1"), resp).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  auto stream = rankStream(request("tenantA", "user-1"));
  EXPECT_EQ(stream.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(stream.pages.empty());
  setFaults("{}");
  EXPECT_TRUE(rank(request("tenantA", "user-1"), resp).ok());
}

// Fault flags apply from the first call, before any control request.
TEST_F(RankingServerTest, FaultFlagsApplyAtStart) {
  start({"--fault-error-rate", "1", "--fault-error-grpc-code", "13"});
  RankResponse resp;
  EXPECT_EQ(rank(request("tenantA", "user-1"), resp).error_code(), grpc::StatusCode::INTERNAL);
  setFaults("{}");
  EXPECT_TRUE(rank(request("tenantA", "user-1"), resp).ok());
}

// Latency knob: calls outlive a deadline they normally meet, then are fast again.
TEST_F(RankingServerTest, LatencyKnobDelaysCalls) {
  start();
  setFaults(R"({"latency_fixed_ms":400})");
  RankResponse resp;
  EXPECT_EQ(rank(request("tenantA", "user-1"), resp, 150ms).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  setFaults("{}");
  EXPECT_TRUE(rank(request("tenantA", "user-1"), resp, 150ms).ok());
}

// Hang knob: no answer until the deadline; the server stays usable; off again at run time.
TEST_F(RankingServerTest, HangKnobNeverAnswers) {
  start();
  setFaults(R"({"hang_rate":1})");
  RankResponse resp;
  EXPECT_EQ(rank(request("tenantA", "user-1"), resp, 200ms).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(rankStream(request("tenantA", "user-1"), 200ms).status.error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  setFaults("{}");
  EXPECT_TRUE(rank(request("tenantA", "user-1"), resp).ok());
}

// Reset knob: unary calls are cancelled (RST_STREAM); streams break after the first page.
TEST_F(RankingServerTest, ResetKnobCancelsCalls) {
  start();
  setFaults(R"({"reset_rate":1})");
  RankResponse resp;
  EXPECT_EQ(rank(request("tenantA", "user-1"), resp).error_code(), grpc::StatusCode::CANCELLED);
  auto stream = rankStream(request("tenantA", "user-1", 20, 5));
  EXPECT_EQ(stream.status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_LE(stream.pages.size(), 1u);
  setFaults("{}");
  stream = rankStream(request("tenantA", "user-1", 20, 5));
  EXPECT_TRUE(stream.status.ok());
  EXPECT_EQ(stream.pages.size(), 4u);
}

// ranking.v1.ReplicaStats counts the calls a replica served and the ones its client cancelled
// (what load-balancing tests read from each replica); injected resets are not cancellations.
TEST_F(RankingServerTest, ReplicaStatsCountCallsPagesAndClientCancellations) {
  start({"--model-cost-us", "0"});
  auto stats_stub = ::ranking::v1::ReplicaStats::NewStub(channel_);
  auto stats = [&] {
    grpc::ClientContext ctx;
    setDeadline(ctx, 1s);
    ::ranking::v1::ReplicaStatsResponse resp;
    EXPECT_TRUE(stats_stub->Get(&ctx, ::ranking::v1::StatsRequest(), &resp).ok());
    return resp;
  };
  RankResponse resp;
  ASSERT_TRUE(rank(request("tenantA", "user-1"), resp).ok());
  ASSERT_TRUE(rank(request("tenantB", "user-2"), resp).ok());
  ASSERT_TRUE(rankStream(request("tenantA", "user-1", 20, 5)).status.ok());
  auto s = stats();
  EXPECT_EQ(s.replica_id(), "replica-under-test");
  EXPECT_EQ(s.rank_calls(), 2);
  EXPECT_EQ(s.rank_stream_calls(), 1);
  EXPECT_EQ(s.pages_sent(), 4);
  EXPECT_EQ(s.cancelled_calls(), 0);

  // The client gives up after the first of 20 slow pages: the handler sees the cancellation.
  setFaults(R"({"slow_body_bytes_per_sec":300})");
  {
    grpc::ClientContext ctx;
    setDeadline(ctx, 5s);
    auto reader = stub_->RankStream(&ctx, request("tenantA", "user-1", 20, 1));
    RankPage page;
    ASSERT_TRUE(reader->Read(&page));
    ctx.TryCancel();
    while (reader->Read(&page)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while (stats().cancelled_calls() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  s = stats();
  EXPECT_EQ(s.cancelled_calls(), 1);
  EXPECT_EQ(s.rank_stream_calls(), 2);
  EXPECT_LT(s.pages_sent(), 4 + 20);

  // A reset the server injects itself is not a client cancellation.
  setFaults(R"({"reset_rate":1})");
  EXPECT_EQ(rank(request("tenantA", "user-1"), resp).error_code(), grpc::StatusCode::CANCELLED);
  s = stats();
  EXPECT_EQ(s.rank_calls(), 3);
  EXPECT_EQ(s.cancelled_calls(), 1);
}

// --host binds another loopback address (DNS tests give replicas one port on 127.0.0.x each) and
// the listening line names it.
TEST(RankingServerHostTest, HostFlagBindsThatAddress) {
  auto spawned = testing::ChildProcess::spawn(
      RANKING_SERVER_PATH, {"--host", "127.0.0.2", "--port", "0", "--control-port", "-1"});
  ASSERT_TRUE(spawned.isOk()) << spawned.error();
  auto line = (*spawned)->waitForLine("listening on 127.0.0.2:", 5s);
  ASSERT_TRUE(line.isOk()) << line.error();
  auto channel = grpc::CreateChannel("127.0.0.2:" + *line, grpc::InsecureChannelCredentials());
  auto stub = RankingService::NewStub(channel);
  grpc::ClientContext ctx;
  setDeadline(ctx, 2s);
  RankResponse resp;
  auto status = stub->Rank(&ctx, request("tenantA", "user-1"), &resp);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(resp.items_size(), 20);
}

// Slow-body knob: messages are held back by size / rate, then fast again.
TEST_F(RankingServerTest, SlowBodyKnobTricklesPages) {
  start({"--model-cost-us", "0"});
  setFaults(R"({"slow_body_bytes_per_sec":2000})");
  auto t0 = std::chrono::steady_clock::now();
  auto stream = rankStream(request("tenantA", "user-1", 20, 5));
  const auto slow = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(stream.status.ok()) << stream.status.error_message();
  EXPECT_EQ(stream.pages.size(), 4u);
  // 20 items of ~30 bytes each at 2000 B/s: about 300 ms.
  EXPECT_GE(slow, 200ms);
  setFaults("{}");
  t0 = std::chrono::steady_clock::now();
  stream = rankStream(request("tenantA", "user-1", 20, 5));
  ASSERT_TRUE(stream.status.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, slow / 2);
}

// Crash knob: the call fails as UNAVAILABLE and the process exits with the crash code.
TEST_F(RankingServerTest, CrashKnobExitsTheProcess) {
  start();
  setFaults(R"({"crash":true})");
  RankResponse resp;
  EXPECT_EQ(rank(request("tenantA", "user-1"), resp).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(server_->waitExit(3s), std::optional<int>(70));
}

// SIGTERM drains: a stream already in flight completes, then the process exits 0.
TEST_F(RankingServerTest, SigtermDrainsInFlightCallsAndExitsZero) {
  start();
  setFaults(R"({"slow_body_bytes_per_sec":2000})");
  grpc::ClientContext ctx;
  setDeadline(ctx, 4s);
  auto reader = stub_->RankStream(&ctx, request("tenantA", "user-1", 20, 5));
  RankPage page;
  ASSERT_TRUE(reader->Read(&page));  // the call is in flight on the server
  server_->sendSignal(SIGTERM);
  int pages = 1;
  while (reader->Read(&page)) {
    ++pages;
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(pages, 4);
  EXPECT_EQ(server_->waitExit(3s), std::optional<int>(0));
}

// A hung call holds the drain until --drain-timeout-ms, not forever, and then ends.
TEST_F(RankingServerTest, DrainCancelsHungCallsAfterTimeout) {
  start({"--drain-timeout-ms", "300", "--fault-hang-rate", "1"});
  std::mutex mu;
  std::condition_variable cv;
  std::optional<grpc::Status> hung_status;
  grpc::ClientContext ctx;  // no deadline: only the server can end this call
  RankRequest req = request("tenantA", "user-1");
  RankResponse resp;
  stub_->async()->Rank(&ctx, &req, &resp, [&](grpc::Status status) {
    std::lock_guard lock(mu);
    hung_status = status;
    cv.notify_all();
  });
  // Health calls are not subject to faults; one answered after the Rank call was started on the
  // same HTTP/2 connection means the server has read the Rank call too.
  EXPECT_EQ(check(kService), HealthCheckResponse::SERVING);
  const auto signalled = std::chrono::steady_clock::now();
  server_->sendSignal(SIGTERM);
  EXPECT_EQ(server_->waitExit(3s), std::optional<int>(0));
  EXPECT_GE(std::chrono::steady_clock::now() - signalled, 250ms);
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, 2s, [&] { return hung_status.has_value(); }));
  EXPECT_FALSE(hung_status->ok());
}

}  // namespace
}  // namespace bulwark::examples::ranking
