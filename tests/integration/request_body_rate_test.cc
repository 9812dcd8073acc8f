// limits.minRequestBodyRate through the real binary: a slow-POST client (a few bytes at a time)
// gets 408 request_body_too_slow and is counted; a client sending at a modest but sufficient
// pace is served.

#include <string>

#include <gtest/gtest.h>

#include "tests/integration/bulwark_process.h"
#include "tests/support/admin_client.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/http1_client.h"
#include "tests/support/wait.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;

/** Sends `total` body bytes `piece` at a time with `pause` between pieces; false on error. */
bool dripBody(Http1Client& client, size_t total, size_t piece, std::chrono::milliseconds pause,
              Deadline deadline) {
  for (size_t sent = 0; sent < total && Clock::now() < deadline; sent += piece) {
    if (!client.sendRaw(std::string(std::min(piece, total - sent), 'p'), deadlineIn(2s))) {
      return false;
    }
    waitFor([] { return false; }, deadlineIn(pause));  // the client's pace, not a sync point
  }
  return true;
}

TEST(RequestBodyRateTest, SlowPostGets408AndASteadyUploadIsServed) {
  auto up = FakeUpstream::start(FakeUpstreamOptions().withStoreBodies(false));
  ASSERT_TRUE(up);
  up->script().otherwise(respond(200, {}, "stored"));
  auto proxy = startBulwark(
      ConfigBuilder()
          .listener("http1", "  limits: {minRequestBodyRate: 1Ki, requestBodyRateWindow: 500ms}\n")
          .upstream("http1", {up->address()})
          .route()
          .yaml());
  ASSERT_TRUE(proxy);
  const uint16_t admin = proxy->adminPort();
  const auto slow_count = [&] {
    return metricValue(admin, "bulwark_downstream_protocol_errors_total",
                       {{"listener", "public"}, {"reason", "request_body_too_slow"}})
        .value_or(0);
  };

  // 20 bytes every 100 ms = 200 B/s, under 1 KiB/s: cut at the first window's end.
  Http1Client slow(proxy->port("public"));
  ASSERT_TRUE(slow.sendRaw("POST /slow HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n",
                           deadlineIn(2s)))
      << slow.lastError();
  const auto started = Clock::now();
  dripBody(slow, 400, 20, 100ms, deadlineIn(5s));
  auto r = slow.readResponse(deadlineIn(5s));
  ASSERT_TRUE(r) << slow.lastError();
  EXPECT_EQ(408, r->status);
  EXPECT_EQ("request_body_too_slow", r->header("x-bulwark-reason").value_or(""));
  EXPECT_LT(Clock::now() - started, 5s);
  EXPECT_TRUE(slow.waitForClose(deadlineIn(3s)));
  EXPECT_TRUE(waitFor([&] { return slow_count() >= 1; }, deadlineIn(3s)));

  // 4 KiB every 100 ms (about 40 KiB/s) for 2 s: well above the floor, served whole.
  Http1Client steady(proxy->port("public"));
  constexpr size_t kBody = 80 * 1024;
  ASSERT_TRUE(steady.sendRaw(
      "POST /steady HTTP/1.1\r\nHost: h\r\nContent-Length: " + std::to_string(kBody) + "\r\n\r\n",
      deadlineIn(2s)));
  ASSERT_TRUE(dripBody(steady, kBody, 4096, 100ms, deadlineIn(20s))) << steady.lastError();
  auto ok = steady.readResponse(deadlineIn(5s));
  ASSERT_TRUE(ok) << steady.lastError();
  EXPECT_EQ(200, ok->status);
  EXPECT_EQ(1, slow_count());
}

}  // namespace
}  // namespace bulwark::testing
