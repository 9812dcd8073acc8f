// The file access log as a log shipper and logrotate see it, through the running binary: lines
// reach the file while the proxy runs (whole lines only), SIGUSR1 and POST /logs/reopen move
// writing to a fresh file, an unwritable path is refused at start and on reload, and a reload
// that changes the log's path or format takes effect.

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iterator>
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

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string logConfig(const FakeUpstream& up, const std::string& access_log_flow_map) {
  return ConfigBuilder()
      .topLevel("observability:\n  accessLog: " + access_log_flow_map + "\n")
      .listener("http1")
      .upstream("http1", {up.address()})
      .route()
      .yaml();
}

void sendRequest(BulwarkProcess& proxy, const std::string& request_id) {
  Http1Client client(proxy.port("public"));
  auto r = client.get("/logged", {{"x-request-id", request_id}}, deadlineIn(5s));
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(200, r->status);
}

/**
 * Waits until the file at `path` holds a line with `request_id`, failing the test if it ever
 * holds a partial line (text not ending in a newline): a shipper tailing it would read half an
 * entry.
 */
bool waitForLoggedId(const std::string& path, const std::string& request_id) {
  bool partial = false;
  bool found = waitFor(
      [&] {
        std::string text = readFile(path);
        partial = partial || (!text.empty() && text.back() != '\n');
        return text.find("\"" + request_id + "\"") != std::string::npos ||
               text.find("request_id=" + request_id) != std::string::npos;
      },
      deadlineIn(5s));
  EXPECT_FALSE(partial) << path << " held a partial line";
  return found;
}

// Proves lines reach the file while the proxy keeps running: without the flush timer they wait
// in the buffer until exit.
TEST(AccessLogFileTest, LinesReachTheFileWhileRunning) {
  FakeUpstream up(Protocol::Http1);
  std::string log_path = writeTempFile("running.log", "");
  auto proxy = startBulwark(logConfig(up, "{path: \"" + log_path + "\", flushInterval: 200ms}"));
  ASSERT_TRUE(proxy);
  for (int i = 0; i < 3; ++i) {
    sendRequest(*proxy, "running-" + std::to_string(i));
    EXPECT_TRUE(waitForLoggedId(log_path, "running-" + std::to_string(i))) << readFile(log_path);
  }
  EXPECT_TRUE(proxy->process().running());
}

// Proves the logrotate contract: after the file is moved away, SIGUSR1 (and POST /logs/reopen)
// make bulwark write to a new file at the configured path; earlier lines stay in the moved one.
TEST(AccessLogFileTest, Sigusr1AndAdminReopenTheFile) {
  FakeUpstream up(Protocol::Http1);
  std::string log_path = writeTempFile("rotated.log", "");
  auto proxy = startBulwark(logConfig(up, "{path: \"" + log_path + "\", flushInterval: 100ms}"));
  ASSERT_TRUE(proxy);

  sendRequest(*proxy, "before-rotate");
  ASSERT_TRUE(waitForLoggedId(log_path, "before-rotate"));
  ASSERT_EQ(0, std::rename(log_path.c_str(), (log_path + ".1").c_str()));
  ASSERT_TRUE(proxy->process().signal(SIGUSR1));
  // The reopen is logged once the new file exists; only then is the next line bound for it.
  ASSERT_TRUE(waitFor([&] { return ::access(log_path.c_str(), F_OK) == 0; }, deadlineIn(5s)));
  sendRequest(*proxy, "after-sigusr1");
  ASSERT_TRUE(waitForLoggedId(log_path, "after-sigusr1"));
  EXPECT_EQ(std::string::npos, readFile(log_path).find("before-rotate"));
  EXPECT_NE(std::string::npos, readFile(log_path + ".1").find("before-rotate"));
  EXPECT_EQ(std::string::npos, readFile(log_path + ".1").find("after-sigusr1"));

  ASSERT_EQ(0, std::rename(log_path.c_str(), (log_path + ".2").c_str()));
  auto reopened = adminPost(proxy->adminPort(), "/logs/reopen");
  EXPECT_EQ(200, reopened.status) << reopened.body;
  sendRequest(*proxy, "after-admin");
  ASSERT_TRUE(waitForLoggedId(log_path, "after-admin"));
  EXPECT_EQ(std::string::npos, readFile(log_path).find("after-sigusr1"));
  EXPECT_NE(std::string::npos, readFile(log_path + ".2").find("after-sigusr1"));
}

// Proves an access log path bulwark cannot open stops the start with the path and the reason,
// before any port is bound.
TEST(AccessLogFileTest, UnwritablePathIsAStartupErrorNamingThePath) {
  FakeUpstream up(Protocol::Http1);
  std::string bad = writeTempFile("not-a-dir", "") + "/access.log";
  std::string yaml = logConfig(up, "{path: \"" + bad + "\"}");
  auto run = runBulwarkCli({"run", "-c", writeTempFile("bad-log.yaml", yaml)});
  ASSERT_TRUE(run.code.has_value());
  EXPECT_NE(0, *run.code);
  std::string all = run.stdout_text + run.stderr_text;
  EXPECT_NE(std::string::npos, all.find("observability.accessLog.path: cannot open " + bad)) << all;
  EXPECT_EQ(std::string::npos, all.find("listening on")) << all;
}

// Proves a reload changes the log in force: a path it cannot open is refused (the old file keeps
// its lines), a new path and a new format take effect, and /config shows what is in force.
TEST(AccessLogFileTest, ReloadMovesTheLogOrIsRefused) {
  FakeUpstream up(Protocol::Http1);
  std::string first = writeTempFile("first.log", "");
  std::string second = writeTempFile("second.log", "");
  auto proxy = startBulwark(logConfig(up, "{path: \"" + first + "\", flushInterval: 100ms}"));
  ASSERT_TRUE(proxy);

  std::string bad = writeTempFile("also-not-a-dir", "") + "/access.log";
  proxy->rewriteConfig(logConfig(up, "{path: \"" + bad + "\"}"));
  auto refused = adminPost(proxy->adminPort(), "/reload");
  EXPECT_EQ(400, refused.status) << refused.body;
  EXPECT_NE(std::string::npos, refused.body.find("observability.accessLog.path: cannot open"))
      << refused.body;
  EXPECT_EQ(std::string::npos, adminGet(proxy->adminPort(), "/config").body.find(bad));
  sendRequest(*proxy, "after-refused-reload");
  EXPECT_TRUE(waitForLoggedId(first, "after-refused-reload"));

  proxy->rewriteConfig(
      logConfig(up, "{path: \"" + second + "\", format: text, flushInterval: 100ms}"));
  auto moved = adminPost(proxy->adminPort(), "/reload");
  ASSERT_EQ(200, moved.status) << moved.body;
  EXPECT_NE(std::string::npos, adminGet(proxy->adminPort(), "/config").body.find(second));
  sendRequest(*proxy, "after-reload");
  ASSERT_TRUE(waitForLoggedId(second, "after-reload"));
  EXPECT_NE(std::string::npos, readFile(second).find("request_id=after-reload"))
      << readFile(second);
  EXPECT_EQ(std::string::npos, readFile(first).find("after-reload"));
}

}  // namespace
}  // namespace bulwark::testing
