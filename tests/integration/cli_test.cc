// The bulwark command line through the real binary: `version [--json]`, `check
// --print-effective`, and `run`'s flags (--concurrency, --admin-address, --log-level) with their
// environment twins (BULWARK_CONFIG, BULWARK_CONCURRENCY, BULWARK_ADMIN_ADDRESS,
// BULWARK_LOG_LEVEL). Exit codes of `check` are in lifecycle_test.cc.

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <regex>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/bulwark_process.h"
#include "tests/support/admin_client.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/http1_client.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;

/** A config whose only upstream never gets traffic (CLI tests look at the process). */
std::string idleConfig(int workers = 2) {
  return ConfigBuilder()
      .concurrency(workers)
      .listener("http1")
      .upstream("http1", {"127.0.0.1:9"})
      .route()
      .yaml();
}

/** A loopback socket bound and listening on a kernel-chosen port, held while it lives. */
class OccupiedPort {
public:
  OccupiedPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    EXPECT_EQ(0, ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)));
    EXPECT_EQ(0, ::listen(fd_, 1));
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~OccupiedPort() { ::close(fd_); }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

/** The "bulwark started: N workers" line of a process started at log level info; -1 if none. */
int workersAnnounced(BulwarkProcess& proxy) {
  auto line = proxy.process().waitForLine(std::regex(R"(bulwark started: (\d+) workers)"));
  return line ? std::stoi((*line)[1]) : -1;
}

TEST(CliTest, VersionPrintsTheVersionAsTextAndJson) {
  auto text = runBulwarkCli({"version"});
  ASSERT_EQ(0, text.code) << text.stderr_text;
  std::smatch m;
  ASSERT_TRUE(std::regex_match(text.stdout_text, m, std::regex(R"(bulwark (\d+\.\d+\.\d+)\n)")))
      << text.stdout_text;
  const std::string version = m[1];

  auto json = runBulwarkCli({"version", "--json"});
  ASSERT_EQ(0, json.code) << json.stderr_text;
  auto doc = nlohmann::json::parse(json.stdout_text, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(doc.is_object()) << json.stdout_text;
  EXPECT_EQ(version, doc.value("version", ""));
  EXPECT_FALSE(doc.value("compiler", "").empty()) << json.stdout_text;
}

// Proves --print-effective prints the config after defaults and inheritance, as JSON on stdout:
// values the file never mentions are there, and a route inherits `defaults`.
TEST(CliTest, CheckPrintEffectivePrintsDefaultsAndInheritance) {
  const std::string file = writeTempFile(
      "effective.yaml", ConfigBuilder()
                            .topLevel("defaults:\n  retries: {attempts: 4, retryOn: [reset]}\n")
                            .listener("http1")
                            .upstream("http1", {"127.0.0.1:9"})
                            .route("  retries: {attempts: 2}\n", "/own", "own")
                            .route()
                            .yaml());
  auto run = runBulwarkCli({"check", "-c", file, "--print-effective"});
  ASSERT_EQ(0, run.code) << run.stderr_text;
  auto doc = nlohmann::json::parse(run.stdout_text, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(doc.is_object()) << run.stdout_text;
  ASSERT_EQ(2u, doc["routes"].size()) << doc.dump();
  const auto& own = doc["routes"][0];
  const auto& inherited = doc["routes"][1];
  EXPECT_EQ("all", inherited.value("name", ""));
  EXPECT_EQ(4, inherited["retries"]["attempts"]) << inherited.dump();
  EXPECT_EQ(nlohmann::json::array({"reset"}), inherited["retries"]["retryOn"]);
  // A route's own block replaces the inherited one as a whole.
  EXPECT_EQ(2, own["retries"]["attempts"]) << own.dump();
  EXPECT_NE(nlohmann::json::array({"reset"}), own["retries"]["retryOn"]) << own.dump();
  EXPECT_EQ("15s", inherited["timeouts"]["request"]) << inherited.dump();
  EXPECT_EQ(3, doc["upstreams"][0]["connectionPool"]["http"]["maxRetries"]) << doc.dump();
  // Without the flag nothing goes to stdout.
  auto plain = runBulwarkCli({"check", "-c", file});
  EXPECT_EQ(0, plain.code) << plain.stderr_text;
  EXPECT_EQ("", plain.stdout_text);
}

// BULWARK_CONFIG stands in for -c, for run and check alike.
TEST(CliTest, ConfigFromTheEnvironment) {
  auto upstream = FakeUpstream::start(Protocol::Http1);
  const std::string yaml = simpleConfig("http1", "http1", {upstream->address()});
  BulwarkStartOptions options;
  options.config_flag = false;
  auto proxy = startBulwark(yaml, options);
  ASSERT_TRUE(proxy);
  Http1Client client(proxy->port("public"));
  auto r = client.get("/env");
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(200, r->status);

  EXPECT_EQ(0, runBulwarkCli({"check"}, {{"BULWARK_CONFIG", proxy->configPath()}}).code);
  const std::string invalid = writeTempFile("invalid.yaml", yaml + "bogusField: 1\n");
  EXPECT_EQ(1, runBulwarkCli({"check"}, {{"BULWARK_CONFIG", invalid}}).code);
}

// --concurrency and BULWARK_CONCURRENCY override runtime.concurrency (2 in the file); the flag
// wins over the variable. The workers really serve: with 3 of them, fresh connections are
// accepted by all three (the access log's worker field).
TEST(CliTest, ConcurrencyFlagAndEnvironmentSetTheWorkers) {
  BulwarkStartOptions from_env;
  from_env.log_level = "info";
  from_env.env = {{"BULWARK_CONCURRENCY", "3"}};
  auto by_env = startBulwark(idleConfig(2), from_env);
  ASSERT_TRUE(by_env);
  EXPECT_EQ(3, workersAnnounced(*by_env)) << by_env->process().output();

  BulwarkStartOptions flag_wins;
  flag_wins.log_level = "info";
  flag_wins.env = {{"BULWARK_CONCURRENCY", "3"}};
  flag_wins.extra_args = {"--concurrency", "1"};
  auto by_flag = startBulwark(idleConfig(2), flag_wins);
  ASSERT_TRUE(by_flag);
  EXPECT_EQ(1, workersAnnounced(*by_flag)) << by_flag->process().output();

  auto bad = runBulwarkCli({"run", "-c", by_flag->configPath(), "--concurrency", "zero"});
  EXPECT_EQ(2, bad.code) << bad.stderr_text;

  auto upstream = FakeUpstream::start(Protocol::Http1);
  BulwarkStartOptions three;
  three.extra_args = {"--concurrency", "3"};
  auto proxy = startBulwark(simpleConfig("http1", "http1", {upstream->address()}, "", "",
                                         "observability:\n  accessLog: {path: /dev/stdout}\n"),
                            three);
  ASSERT_TRUE(proxy);
  // 60 connections miss one of three workers with probability 3 x (2/3)^60, about 1e-10.
  constexpr int kConnections = 60;
  for (int i = 0; i < kConnections; ++i) {
    Http1Client client(proxy->port("public"));
    auto r = client.get("/c" + std::to_string(i));
    ASSERT_TRUE(r) << client.lastError();
  }
  std::set<int> workers;
  ASSERT_TRUE(waitFor(
      [&] {
        workers.clear();
        int entries = 0;
        for (const auto& line : proxy->process().lines()) {
          auto entry = nlohmann::json::parse(line.text, nullptr, false);
          if (entry.is_object() && entry.contains("worker")) {
            workers.insert(entry["worker"].get<int>());
            ++entries;
          }
        }
        return entries == kConnections;
      },
      deadlineIn(5s)))
      << proxy->process().output();
  EXPECT_EQ((std::set<int>{0, 1, 2}), workers);
}

// --admin-address and BULWARK_ADMIN_ADDRESS replace admin.address: the file's address is taken
// by another socket, so bulwark only starts because the override is used.
TEST(CliTest, AdminAddressFlagAndEnvironmentOverrideTheFile) {
  OccupiedPort taken;
  const std::string yaml = ConfigBuilder()
                               .adminAddress(taken.address())
                               .listener("http1")
                               .upstream("http1", {"127.0.0.1:9"})
                               .route()
                               .yaml();
  const std::string file = writeTempFile("taken.yaml", yaml);
  auto refused = runBulwarkCli({"run", "-c", file, "--log-level", "warn"}, {}, deadlineIn(10s));
  EXPECT_EQ(1, refused.code) << "started with its admin port taken: " << refused.stderr_text;

  BulwarkStartOptions by_flag;
  by_flag.extra_args = {"--admin-address", "127.0.0.1:0"};
  auto flagged = startBulwark(yaml, by_flag);
  ASSERT_TRUE(flagged);
  EXPECT_EQ(200, adminGet(flagged->adminPort(), "/live").status);

  BulwarkStartOptions by_env;
  by_env.env = {{"BULWARK_ADMIN_ADDRESS", "127.0.0.1:0"}};
  auto env = startBulwark(yaml, by_env);
  ASSERT_TRUE(env);
  EXPECT_EQ(200, adminGet(env->adminPort(), "/live").status);
  EXPECT_NE(flagged->adminPort(), env->adminPort());
}

// --log-level and BULWARK_LOG_LEVEL: at warn the info line announcing the workers is not
// printed; at the default (info) it is; an unknown level is a usage error from either source.
TEST(CliTest, LogLevelFlagAndEnvironment) {
  auto announced = [](const BulwarkStartOptions& options) {
    auto proxy = startBulwark(idleConfig(), options);
    if (!proxy) {
      return false;
    }
    EXPECT_EQ(0, proxy->stop(SIGTERM));
    // Exited: every line it printed has been read.
    (void)proxy->process().waitForLine(std::regex("^\x01never\x01$"), deadlineIn(2s));
    return proxy->process().output().find("bulwark started:") != std::string::npos;
  };
  BulwarkStartOptions by_default;
  by_default.log_level = "";
  EXPECT_TRUE(announced(by_default));
  BulwarkStartOptions warn_by_env;
  warn_by_env.log_level = "";
  warn_by_env.env = {{"BULWARK_LOG_LEVEL", "warn"}};
  EXPECT_FALSE(announced(warn_by_env));
  BulwarkStartOptions info_by_flag;
  info_by_flag.log_level = "info";
  info_by_flag.env = {{"BULWARK_LOG_LEVEL", "warn"}};
  EXPECT_TRUE(announced(info_by_flag));

  const std::string file = writeTempFile("idle.yaml", idleConfig());
  EXPECT_EQ(2, runBulwarkCli({"run", "-c", file, "--log-level", "loud"}).code);
  EXPECT_EQ(2, runBulwarkCli({"run", "-c", file}, {{"BULWARK_LOG_LEVEL", "loud"}}).code);
}

// Config errors are compiler-style (file:line:col: error: path: message) and a near-miss field
// name gets a "did you mean"; every problem is reported, and the file is refused (exit 1).
TEST(CliTest, CheckReportsCompilerStyleErrorsWithSuggestions) {
  const std::string file = writeTempFile("typos.yaml", ConfigBuilder()
                                                           .listener("http1")
                                                           .upstream("http1", {"127.0.0.1:9"})
                                                           .route("  timeouts: {request: fast}\n"
                                                                  "  retires: {attempts: 2}\n")
                                                           .yaml());
  auto run = runBulwarkCli({"check", "-c", file});
  EXPECT_EQ(1, run.code) << run.stderr_text;
  const std::string at = std::regex_replace(file, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)");
  EXPECT_TRUE(std::regex_search(
      run.stderr_text,
      std::regex(
          at +
          R"(:\d+:\d+: error: routes\[0\]\.timeouts\.request: expected a duration like "250ms")")))
      << run.stderr_text;
  EXPECT_TRUE(std::regex_search(run.stderr_text,
                                std::regex(at + R"(:\d+:\d+: error: .*did you mean "retries"\?)")))
      << run.stderr_text;
}

}  // namespace
}  // namespace bulwark::testing
