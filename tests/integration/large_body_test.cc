// 1 GiB uploads and downloads through the real bulwark binary, over HTTP/1.1 and h2c, while a
// sampler watches bulwark's VmRSS: bodies must stream with backpressure (evbuffer watermarks,
// HTTP/2 flow-control windows), never be buffered whole. The bound: RSS grows by less
// than 64 MiB. Each case moves 1 GiB once over loopback, twice through the kernel.

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "tests/integration/bulwark_process.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/http1_client.h"
#include "tests/support/http2_client.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr uint64_t kMaxRssGrowth = uint64_t{64} << 20;
// A request timeout far above the transfer time: the route must not cut a slow transfer.
const std::string kLongTimeout = "  timeouts: {request: 5m}\n";

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr auto kTransferDeadline = 300s;  // sanitizer builds are several times slower
#else
constexpr auto kTransferDeadline = 60s;
#endif

/**
 * Samples a process's VmRSS every few milliseconds on its own thread and keeps the maximum, so
 * a transient peak mid-transfer is caught, not just the state at the end. Thread: test thread
 * for the public methods; the sampler thread reads only pid_ and writes under mu_.
 */
class RssSampler {
public:
  explicit RssSampler(pid_t pid) : pid_(pid) {
    auto now = readRssBytes(pid_);
    baseline_ = now.value_or(0);
    peak_ = baseline_;
    thread_ = std::thread([this] { loop(); });
  }
  ~RssSampler() { stop(); }

  void stop() {
    {
      std::lock_guard lock(mu_);
      if (stop_) {
        return;
      }
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  uint64_t baseline() const { return baseline_; }
  uint64_t peak() {
    std::lock_guard lock(mu_);
    return peak_;
  }
  uint64_t samples() {
    std::lock_guard lock(mu_);
    return samples_;
  }
  uint64_t growth() { return peak() > baseline_ ? peak() - baseline_ : 0; }

private:
  void loop() {
    std::unique_lock lock(mu_);
    while (!stop_) {
      lock.unlock();
      auto rss = readRssBytes(pid_);
      lock.lock();
      if (rss) {
        peak_ = std::max(peak_, *rss);
        ++samples_;
      }
      // A periodic sample, not a synchronisation sleep: stop() wakes it at once.
      cv_.wait_for(lock, 10ms, [this] { return stop_; });
    }
  }

  pid_t pid_;
  uint64_t baseline_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;     // guarded by mu_
  uint64_t peak_ = 0;     // guarded by mu_
  uint64_t samples_ = 0;  // guarded by mu_
  std::thread thread_;
};

std::string mib(uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

class LargeBodyTest : public ::testing::Test {
protected:
  /** Starts bulwark in front of `upstream` with a catch-all route and a long request timeout. */
  void startProxy(const std::string& listener_protocol, const std::string& upstream_protocol,
                  const FakeUpstream& upstream) {
    proxy_ = startBulwark(
        simpleConfig(listener_protocol, upstream_protocol, {upstream.address()}, kLongTimeout));
    ASSERT_TRUE(proxy_);
  }

  std::unique_ptr<BulwarkProcess> proxy_;
};

// Warm-up request so the baseline includes the worker's pools, codecs and first allocations.
void warmUpHttp1(uint16_t port) {
  Http1Client warm(port);
  auto r = warm.get("/warm");
  ASSERT_TRUE(r) << warm.lastError();
  ASSERT_EQ(200, r->status);
}

void warmUpHttp2(uint16_t port) {
  Http2Client warm(port);
  ASSERT_TRUE(warm.connect()) << warm.lastError();
  auto r = warm.get("/warm");
  ASSERT_TRUE(r) << warm.lastError();
  ASSERT_EQ(200, r->status);
}

TEST_F(LargeBodyTest, Http1OneGibDownloadStreamsWithBoundedRss) {
  FakeUpstream upstream(Protocol::Http1);
  upstream.script().forPath("/big", respondGenerated(200, kGiB));
  ASSERT_NO_FATAL_FAILURE(startProxy("http1", "http1", upstream));
  ASSERT_NO_FATAL_FAILURE(warmUpHttp1(proxy_->port("public")));

  RssSampler rss(proxy_->process().pid());
  Http1Client client(proxy_->port("public"));
  Http1ReadOptions discard;
  discard.discard_body = true;
  const auto start = Clock::now();
  auto r = client.request(http1Get("/big"), deadlineIn(kTransferDeadline), discard);
  const auto elapsed = Clock::now() - start;
  rss.stop();

  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(200, r->status);
  EXPECT_TRUE(r->complete) << r->error;
  EXPECT_EQ(kGiB, r->body_bytes);
  EXPECT_TRUE(r->body_matches_pattern);
  EXPECT_GT(rss.samples(), 0u);
  EXPECT_LT(rss.growth(), kMaxRssGrowth) << "bulwark buffered the body: baseline "
                                         << mib(rss.baseline()) << ", peak " << mib(rss.peak());
  RecordProperty(
      "elapsed_ms",
      static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()));
  RecordProperty("rss_growth_kib", static_cast<int>(rss.growth() >> 10));
}

TEST_F(LargeBodyTest, Http1OneGibUploadStreamsWithBoundedRss) {
  FakeUpstream upstream(FakeUpstreamOptions().withProtocol(Protocol::Http1).withStoreBodies(false));
  upstream.script().otherwise(respond(200, {}, "stored"));
  ASSERT_NO_FATAL_FAILURE(startProxy("http1", "http1", upstream));
  ASSERT_NO_FATAL_FAILURE(warmUpHttp1(proxy_->port("public")));
  upstream.clearRequests();

  RssSampler rss(proxy_->process().pid());
  Http1Client client(proxy_->port("public"));
  Http1Request put = http1Request("PUT", "/upload");
  put.generated_body_bytes = kGiB;
  auto r = client.request(put, deadlineIn(kTransferDeadline));
  rss.stop();

  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(200, r->status);
  EXPECT_EQ("stored", r->body);
  ASSERT_TRUE(upstream.waitForRequests(1));
  const ReceivedRequest logged = *upstream.request(0);
  EXPECT_EQ("/upload", logged.path);
  EXPECT_TRUE(logged.complete);
  EXPECT_EQ(kGiB, logged.body_bytes);
  EXPECT_TRUE(logged.body_matches_pattern);
  EXPECT_LT(rss.growth(), kMaxRssGrowth) << "bulwark buffered the body: baseline "
                                         << mib(rss.baseline()) << ", peak " << mib(rss.peak());
  RecordProperty("rss_growth_kib", static_cast<int>(rss.growth() >> 10));
}

TEST_F(LargeBodyTest, H2cOneGibDownloadStreamsWithBoundedRss) {
  FakeUpstream upstream(Protocol::Http2);
  upstream.script().forPath("/big", respondGenerated(200, kGiB));
  ASSERT_NO_FATAL_FAILURE(startProxy("h2c", "http2", upstream));
  ASSERT_NO_FATAL_FAILURE(warmUpHttp2(proxy_->port("public")));

  RssSampler rss(proxy_->process().pid());
  Http2Client client(proxy_->port("public"));
  ASSERT_TRUE(client.connect()) << client.lastError();
  Http2Request get = http2Get("/big");
  get.discard_body = true;
  auto r = client.request(get, deadlineIn(kTransferDeadline));
  rss.stop();

  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(200, r->status);
  EXPECT_TRUE(r->complete);
  EXPECT_FALSE(r->reset_by_peer) << "error code " << r->error_code;
  EXPECT_EQ(kGiB, r->body_bytes);
  EXPECT_TRUE(r->body_matches_pattern);
  EXPECT_LT(rss.growth(), kMaxRssGrowth) << "bulwark buffered the body: baseline "
                                         << mib(rss.baseline()) << ", peak " << mib(rss.peak());
  RecordProperty("rss_growth_kib", static_cast<int>(rss.growth() >> 10));
}

TEST_F(LargeBodyTest, H2cOneGibUploadStreamsWithBoundedRss) {
  // Large upstream windows so the upload is not throttled to one 64 KiB window per round trip.
  FakeUpstream upstream(FakeUpstreamOptions()
                            .withProtocol(Protocol::Http2)
                            .withStoreBodies(false)
                            .withH2InitialWindowSize(1 << 20)
                            .withH2ConnectionWindowSize(1 << 24));
  upstream.script().otherwise(respond(200, {}, "stored"));
  ASSERT_NO_FATAL_FAILURE(startProxy("h2c", "http2", upstream));
  ASSERT_NO_FATAL_FAILURE(warmUpHttp2(proxy_->port("public")));
  upstream.clearRequests();

  RssSampler rss(proxy_->process().pid());
  Http2Client client(proxy_->port("public"));
  ASSERT_TRUE(client.connect()) << client.lastError();
  Http2Request post = http2Request("POST", "/upload");
  post.generated_body_bytes = kGiB;
  auto r = client.request(post, deadlineIn(kTransferDeadline));
  rss.stop();

  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(200, r->status);
  EXPECT_TRUE(r->complete);
  EXPECT_EQ("stored", r->body);
  ASSERT_TRUE(upstream.waitForRequests(1));
  const ReceivedRequest logged = *upstream.request(0);
  EXPECT_EQ("/upload", logged.path);
  EXPECT_TRUE(logged.complete);
  EXPECT_EQ(kGiB, logged.body_bytes);
  EXPECT_TRUE(logged.body_matches_pattern);
  EXPECT_LT(rss.growth(), kMaxRssGrowth) << "bulwark buffered the body: baseline "
                                         << mib(rss.baseline()) << ", peak " << mib(rss.peak());
  RecordProperty("rss_growth_kib", static_cast<int>(rss.growth() >> 10));
}

// h2c downstream, HTTP/1.1 upstream: the HTTP/2 window must be tied to the upstream socket's
// write buffer, not just to the downstream one.
TEST_F(LargeBodyTest, H2cToHttp1OneGibUploadStreamsWithBoundedRss) {
  FakeUpstream upstream(FakeUpstreamOptions().withProtocol(Protocol::Http1).withStoreBodies(false));
  upstream.script().otherwise(respond(200, {}, "stored"));
  ASSERT_NO_FATAL_FAILURE(startProxy("h2c", "http1", upstream));
  ASSERT_NO_FATAL_FAILURE(warmUpHttp2(proxy_->port("public")));
  upstream.clearRequests();

  RssSampler rss(proxy_->process().pid());
  Http2Client client(proxy_->port("public"));
  ASSERT_TRUE(client.connect()) << client.lastError();
  Http2Request post = http2Request("POST", "/upload");
  post.generated_body_bytes = kGiB;
  auto r = client.request(post, deadlineIn(kTransferDeadline));
  rss.stop();

  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(200, r->status);
  ASSERT_TRUE(upstream.waitForRequests(1));
  const ReceivedRequest logged = *upstream.request(0);
  EXPECT_EQ(kGiB, logged.body_bytes);
  EXPECT_TRUE(logged.body_matches_pattern);
  EXPECT_LT(rss.growth(), kMaxRssGrowth) << "bulwark buffered the body: baseline "
                                         << mib(rss.baseline()) << ", peak " << mib(rss.peak());
}

}  // namespace
}  // namespace bulwark::testing
