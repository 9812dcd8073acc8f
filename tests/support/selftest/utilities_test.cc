// The small utilities: waitFor, child processes, /proc readers, Prometheus text, admin GET,
// gRPC framing and the body pattern.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <thread>

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include "tests/support/admin_client.h"
#include "tests/support/body_pattern.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/grpc_codec.h"
#include "tests/support/http1_client.h"
#include "tests/support/process.h"
#include "tests/support/prometheus_text.h"
#include "tests/support/wait.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;

ProcessOptions helper(std::vector<std::string> args) {
  ProcessOptions o;
  o.path = BULWARK_SUPPORT_CHILD_HELPER;
  o.args = std::move(args);
  return o;
}

// waitFor wakes as soon as another thread's notifyWaiters() announces the change.
TEST(WaitTest, WakesOnNotify) {
  std::atomic<bool> flag{false};
  std::thread t([&] {
    flag = true;
    notifyWaiters();
  });
  EXPECT_TRUE(waitFor([&] { return flag.load(); }, 2s));
  t.join();
}

// waitFor gives up at the deadline and reports false, without sleeping much past it.
TEST(WaitTest, FalseAtDeadline) {
  const auto start = Clock::now();
  EXPECT_FALSE(waitFor([] { return false; }, 30ms));
  const auto elapsed = Clock::now() - start;
  EXPECT_GE(elapsed, 30ms);
  EXPECT_LT(elapsed, 500ms);
}

// A child prints its port, reacts to SIGHUP and SIGTERM, and its exit code is captured.
TEST(ChildProcessTest, ListeningPortSignalsAndExit) {
  std::string error;
  auto child = ChildProcess::spawn(helper({"listen"}), &error);
  ASSERT_TRUE(child) << error;
  auto port = child->waitForListeningPort();
  ASSERT_TRUE(port) << child->output();
  Http1Client probe(*port);
  EXPECT_TRUE(probe.connect()) << probe.lastError();  // the port is really bound
  EXPECT_TRUE(child->running());
  ASSERT_TRUE(child->signal(SIGHUP));
  EXPECT_TRUE(child->waitForLine("^reloaded$"));
  ASSERT_TRUE(child->signal(SIGTERM));
  auto status = child->waitForExit();
  ASSERT_TRUE(status);
  EXPECT_TRUE(status->exited);
  EXPECT_EQ(0, status->code);
  EXPECT_FALSE(child->running());
  bool saw_stderr = false;
  for (const auto& line : child->lines()) {
    saw_stderr |= line.from_stderr && line.text == "starting up";
  }
  EXPECT_TRUE(saw_stderr) << child->output();
}

// Non-zero exit codes, SIGKILL and environment variables come through.
TEST(ChildProcessTest, ExitCodeKillAndEnv) {
  auto exits = ChildProcess::spawn(helper({"exit", "3"}));
  ASSERT_TRUE(exits);
  auto st = exits->waitForExit();
  ASSERT_TRUE(st);
  EXPECT_EQ(3, st->code);

  ProcessOptions env_opts = helper({"env", "BULWARK_SELFTEST_VAR"});
  env_opts.env = {{"BULWARK_SELFTEST_VAR", "forty two"}};
  auto env = ChildProcess::spawn(env_opts);
  ASSERT_TRUE(env);
  EXPECT_TRUE(env->waitForLine("^BULWARK_SELFTEST_VAR=forty two$")) << env->output();

  auto victim = ChildProcess::spawn(helper({"listen"}));
  ASSERT_TRUE(victim);
  ASSERT_TRUE(victim->waitForListeningPort());
  ASSERT_TRUE(victim->kill());
  auto killed = victim->waitForExit();
  ASSERT_TRUE(killed);
  EXPECT_TRUE(killed->signaled);
  EXPECT_EQ(SIGKILL, killed->signal);
}

// Spawning a missing binary fails cleanly; waiting for a line that never comes times out.
TEST(ChildProcessTest, FailuresAreReported) {
  std::string error;
  ProcessOptions missing;
  missing.path = "/nonexistent/bulwark-binary";
  EXPECT_FALSE(ChildProcess::spawn(missing, &error));
  EXPECT_NE(std::string::npos, error.find("/nonexistent/bulwark-binary"));
  auto child = ChildProcess::spawn(helper({"listen"}));
  ASSERT_TRUE(child);
  EXPECT_FALSE(child->waitForLine("never printed", deadlineIn(30ms)));
  EXPECT_FALSE(child->waitForExit(deadlineIn(10ms)));  // still running
}

// A sanitizer report on a child's stderr fails the test that ran the child (sanitized builds
// of bulwark are mostly SIGKILLed at the end of a test, so nothing else would notice); other
// stderr output does not.
TEST(ChildProcessTest, SanitizerReportOfAChildFailsTheTest) {
  for (const std::string report :
       {"==4242==ERROR: AddressSanitizer: heap-use-after-free on address 0x610000008140",
        "WARNING: ThreadSanitizer: data race (pid=4242)",
        "[warn] upstream: connect refusedWARNING: ThreadSanitizer: data race (pid=4242)",
        "SUMMARY: UndefinedBehaviorSanitizer: undefined-behavior proxy/http/codec.cc:12:5",
        "proxy/http/codec.cc:12:5: runtime error: signed integer overflow"}) {
    EXPECT_NONFATAL_FAILURE(
        {
          auto child = ChildProcess::spawn(helper({"stderr", report}));
          ASSERT_TRUE(child);
          ASSERT_TRUE(child->waitForExit());
        },
        report);
  }
  auto quiet = ChildProcess::spawn(helper({"stderr", "warn: upstream backend: connect refused"}));
  ASSERT_TRUE(quiet);
  ASSERT_TRUE(quiet->waitForExit());
}

// /proc readers return plausible figures for this process and a child.
TEST(ProcStatsTest, RssCpuAndFds) {
  auto rss = readRssBytes(getpid());
  ASSERT_TRUE(rss);
  EXPECT_GT(*rss, 1u << 20);
  auto peak = readPeakRssBytes(getpid());
  ASSERT_TRUE(peak);
  EXPECT_GE(*peak, *rss);
  EXPECT_TRUE(readCpuTime(getpid()));
  auto fds = countOpenFds(getpid());
  ASSERT_TRUE(fds);
  EXPECT_GE(*fds, 3u);
  auto child = ChildProcess::spawn(helper({"listen"}));
  ASSERT_TRUE(child);
  ASSERT_TRUE(child->waitForListeningPort());
  auto child_rss = readRssBytes(child->pid());
  ASSERT_TRUE(child_rss);
  EXPECT_GT(*child_rss, 0u);
  EXPECT_FALSE(readRssBytes(-1));
}

constexpr char kExposition[] = R"(# HELP bulwark_upstream_rq_retries_total Retries.
# TYPE bulwark_upstream_rq_retries_total counter
bulwark_upstream_rq_retries_total{route="rank",reason="unavailable",upstream="ranking"} 2
bulwark_upstream_rq_retries_total{route="rank",reason="reset",upstream="ranking"} 1
bulwark_upstream_rq_retries_total{route="tasks",reason="reset",upstream="tasks"} 5
# a plain comment
# TYPE bulwark_breaker_state gauge
bulwark_breaker_state{upstream="a \"quoted\" \\ name\nx"} 1
bulwark_up 1 1700000000000
# TYPE bulwark_latency_seconds histogram
bulwark_latency_seconds_bucket{le="0.1"} 3
bulwark_latency_seconds_bucket{le="+Inf"} 4
bulwark_latency_seconds_sum 0.75
bulwark_latency_seconds_count 4
bulwark_weird{a="1",} NaN
)";

// Values are found by exact label set or by a unique subset; sums aggregate.
TEST(PrometheusTextTest, ParsesAndLooksUp) {
  std::string error;
  auto m = PrometheusText::parse(kExposition, &error);
  ASSERT_TRUE(m) << error;
  EXPECT_EQ("counter", m->type("bulwark_upstream_rq_retries_total"));
  EXPECT_EQ("Retries.", m->help("bulwark_upstream_rq_retries_total"));
  EXPECT_EQ(2, m->value("bulwark_upstream_rq_retries_total",
                        {{"route", "rank"}, {"reason", "unavailable"}}));
  EXPECT_EQ(5, m->value("bulwark_upstream_rq_retries_total", {{"route", "tasks"}}));
  EXPECT_FALSE(m->value("bulwark_upstream_rq_retries_total", {{"route", "rank"}}));  // ambiguous
  EXPECT_EQ(3, m->sum("bulwark_upstream_rq_retries_total", {{"route", "rank"}}));
  EXPECT_EQ(8, m->sum("bulwark_upstream_rq_retries_total"));
  EXPECT_FALSE(m->value("bulwark_missing_total"));
  EXPECT_EQ(1, m->value("bulwark_breaker_state", {{"upstream", "a \"quoted\" \\ name\nx"}}));
  EXPECT_EQ(1, m->value("bulwark_up"));
  EXPECT_EQ(1700000000000, m->samples("bulwark_up").at(0).timestamp_ms);
  EXPECT_EQ(4, m->value("bulwark_latency_seconds_bucket", {{"le", "+Inf"}}));
  EXPECT_EQ(0.75, m->value("bulwark_latency_seconds_sum"));
  EXPECT_TRUE(std::isnan(*m->value("bulwark_weird", {{"a", "1"}})));
}

// Malformed samples fail the parse instead of silently reading as "absent".
TEST(PrometheusTextTest, RejectsMalformedLines) {
  for (const char* bad : {"metric{a=\"1\" 1\n", "metric{a=1} 1\n", "metric 1x\n", "1metric 1\n",
                          "metric{a=\"1\",a=\"2\"} 1\n", "metric\n"}) {
    std::string error;
    EXPECT_FALSE(PrometheusText::parse(bad, &error)) << bad;
    EXPECT_NE(std::string::npos, error.find("line 1")) << bad;
  }
}

// The admin helpers read status, body and metrics from a real HTTP server.
TEST(AdminClientTest, GetPostAndMetrics) {
  FakeUpstream admin(Protocol::Http1);
  admin.script().forPath(
      "/metrics", respond(200, {{"content-type", "text/plain; version=0.0.4"}}, kExposition));
  admin.script().forPath("/ready", respond(503, {}, "draining"));
  const AdminResponse ready = adminGet(admin.port(), "/ready");
  ASSERT_TRUE(ready.ok) << ready.error;
  EXPECT_EQ(503, ready.status);
  EXPECT_EQ("draining", ready.body);
  EXPECT_FALSE(waitForAdminStatus(admin.port(), "/ready", 200, deadlineIn(30ms)));
  EXPECT_TRUE(waitForAdminStatus(admin.port(), "/ready", 503));

  const AdminResponse post = adminPost(admin.port(), "/reload", "x");
  ASSERT_TRUE(post.ok);
  EXPECT_EQ("POST", findHeader(post.headers, "x-echo-method"));

  EXPECT_EQ(2, metricValue(admin.port(), "bulwark_upstream_rq_retries_total",
                           {{"route", "rank"}, {"reason", "unavailable"}}));
  EXPECT_TRUE(waitForMetric(admin.port(), "bulwark_upstream_rq_retries_total", {{"route", "rank"}},
                            [](double v) { return v == 3; }));
  std::string error;
  EXPECT_FALSE(fetchMetrics(admin.port(), "/ready", defaultDeadline(), &error));
  EXPECT_NE(std::string::npos, error.find("503"));
}

// Admin requests to a closed port fail with a reason instead of hanging.
TEST(AdminClientTest, RefusedPortIsAnError) {
  uint16_t port;
  {
    FakeUpstream gone(Protocol::Http1);
    port = gone.port();
  }
  const AdminResponse r = adminGet(port, "/ready", deadlineIn(1s));
  EXPECT_FALSE(r.ok);
  EXPECT_FALSE(r.error.empty());
}

// gRPC framing round-trips, truncation is detected, grpc-message is percent-coded.
TEST(GrpcCodecTest, FramingAndMessageEncoding) {
  const std::string body =
      encodeGrpcMessage("ab") + encodeGrpcMessage("") + encodeGrpcMessage("xyz");
  auto msgs = decodeGrpcMessages(body);
  ASSERT_TRUE(msgs);
  EXPECT_EQ((std::vector<std::string>{"ab", "", "xyz"}), *msgs);
  EXPECT_FALSE(decodeGrpcMessages(body.substr(0, body.size() - 1)));
  EXPECT_FALSE(decodeGrpcMessages(encodeGrpcPrefix(0xFFFFFFFF)));
  EXPECT_EQ("100%25 d%C3%A9j%C3%A0", encodeGrpcMessageHeader("100% d\xC3\xA9j\xC3\xA0"));
  EXPECT_EQ("100% d\xC3\xA9j\xC3\xA0", decodeGrpcMessageHeader("100%25 d%C3%A9j%C3%A0"));
  EXPECT_STREQ("UNAVAILABLE", grpcStatusName(GrpcStatus::Unavailable));
}

// The body pattern is position-dependent, so shifted data does not match.
TEST(BodyPatternTest, DetectsShiftedData) {
  const std::string p = bodyPattern(1000);
  EXPECT_TRUE(matchesBodyPattern(0, p));
  EXPECT_TRUE(matchesBodyPattern(10, p.substr(10)));
  EXPECT_FALSE(matchesBodyPattern(11, p.substr(10)));
  EXPECT_FALSE(matchesBodyPattern(0, p.substr(1)));
}

}  // namespace
}  // namespace bulwark::testing
