#include "bench/loadgen/options.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace bulwark::bench {
namespace {

using namespace std::chrono_literals;

CommandLine parse(std::vector<std::string> args) {
  args.insert(args.begin(), "bulwark-loadgen");
  std::vector<const char*> argv;
  for (const auto& a : args) {
    argv.push_back(a.c_str());
  }
  return parseCommandLine(static_cast<int>(argv.size()), argv.data());
}

// A scratch directory removed at the end of the test.
class TempDir {
public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("loadgen-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string write(const std::string& name, const std::string& content) const {
    std::ofstream(path_ / name) << content;
    return (path_ / name).string();
  }

private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

TEST(LoadgenOptionsTest, FullCommandLine) {
  // clang-format off
  auto cli = parse({"--target", "127.0.0.1:8080", "--target", "http://localhost:9000/",
                    "--protocol", "h2c", "--connections", "4", "--max-streams", "50",
                    "--phase", "warm:10-100:5s", "--phase", "steady:100:10s",
                    "--method", "POST", "--path", "/x", "--header", "x-a:  1 ", "--body", "hi",
                    "--timeout", "250ms", "--max-queue", "7", "--seed", "9", "--json-out", "-",
                    "--quiet", "--threads", "2"});
  // clang-format on
  ASSERT_TRUE(cli.options) << cli.message;
  const auto& o = *cli.options;
  ASSERT_EQ(2u, o.targets.size());
  EXPECT_EQ("127.0.0.1", o.targets[0].host);
  EXPECT_EQ(8080, o.targets[0].port);
  EXPECT_EQ("localhost:9000", o.targets[1].text);
  EXPECT_EQ(LoadProtocol::H2c, o.protocol);
  EXPECT_EQ(4u, o.connections);
  EXPECT_EQ(50u, o.max_streams);
  ASSERT_EQ(2u, o.phases.size());
  EXPECT_EQ(10.0, o.phases[0].rps_from);
  EXPECT_EQ(100.0, o.phases[0].rps_to);
  ASSERT_EQ(1u, o.requests.size());
  EXPECT_EQ("POST", o.requests[0].method);
  EXPECT_EQ("/x", o.requests[0].path);
  EXPECT_EQ("hi", o.requests[0].body);
  ASSERT_EQ(1u, o.requests[0].headers.size());
  EXPECT_EQ("x-a", o.requests[0].headers[0].first);
  EXPECT_EQ("1", o.requests[0].headers[0].second);
  EXPECT_EQ(250ms, o.timeout);
  EXPECT_EQ(7u, o.max_queue);
  EXPECT_EQ(9u, o.seed);
  EXPECT_EQ("-", o.json_out);
  EXPECT_TRUE(o.quiet);
  EXPECT_EQ(2u, o.threads);
  EXPECT_TRUE(o.requests_file.empty());
}

TEST(LoadgenOptionsTest, RateDurationShortcut) {
  auto cli = parse({"--target", "[::1]:80", "--rate", "250", "--duration", "2s"});
  ASSERT_TRUE(cli.options) << cli.message;
  EXPECT_EQ("::1", cli.options->targets[0].host);
  ASSERT_EQ(1u, cli.options->phases.size());
  EXPECT_EQ("steady", cli.options->phases[0].name);
  EXPECT_EQ(500u, cli.options->phases[0].requestCount());
  EXPECT_EQ(5s, cli.options->timeout);
  EXPECT_EQ(8u, cli.options->connections);
}

// Bad arguments exit 2 with a message; --help exits 0.
TEST(LoadgenOptionsTest, BadArgumentsExitTwo) {
  const std::vector<std::vector<std::string>> bad = {
      {"--rate", "10", "--duration", "1s"},                           // no target
      {"--target", "127.0.0.1:80"},                                   // no load
      {"--target", "127.0.0.1", "--rate", "10", "--duration", "1s"},  // no port
      {"--target", "127.0.0.1:80", "--rate", "10"},                   // rate without duration
      {"--target", "127.0.0.1:80", "--phase", "a:10:1s", "--rate", "1", "--duration", "1s"},
      {"--target", "127.0.0.1:80", "--phase", "a:x:1s"},
      {"--target", "127.0.0.1:80", "--rate", "10", "--duration", "1s", "--protocol", "h3"},
      {"--target", "127.0.0.1:80", "--rate", "10", "--duration", "1s", "--timeout", "soon"},
      {"--target", "127.0.0.1:80", "--rate", "10", "--duration", "1s", "--header", "novalue"},
      {"--target", "127.0.0.1:80", "--rate", "10", "--duration", "1s", "--protocol",
       "grpc"},  // no method
      {"--target", "127.0.0.1:80", "--rate", "10", "--duration", "1s", "--body", "a", "--body-file",
       "b"},
      {"--target", "127.0.0.1:80", "--rate", "10", "--duration", "1s", "--requests",
       "/nonexistent.json"},
      {"--target", "127.0.0.1:80", "--rate", "10", "--duration", "1s", "--threads", "4",
       "--connections", "2"},
  };
  for (const auto& args : bad) {
    auto cli = parse(args);
    EXPECT_FALSE(cli.options) << testing::PrintToString(args);
    EXPECT_EQ(2, cli.exit_code) << testing::PrintToString(args);
    EXPECT_FALSE(cli.message.empty());
  }
  auto help = parse({"--help"});
  EXPECT_FALSE(help.options);
  EXPECT_EQ(0, help.exit_code);
  EXPECT_NE(std::string::npos, help.message.find("--phase"));
}

TEST(LoadgenOptionsTest, GrpcTemplate) {
  auto cli = parse({"--target", "127.0.0.1:50051", "--protocol", "grpc", "--grpc-method",
                    "/pkg.Svc/Get", "--body", "msg", "--rate", "1", "--duration", "1s"});
  ASSERT_TRUE(cli.options) << cli.message;
  EXPECT_EQ(LoadProtocol::Grpc, cli.options->protocol);
  EXPECT_EQ("/pkg.Svc/Get", cli.options->requests[0].grpc_method);
  EXPECT_EQ("POST", cli.options->requests[0].method);
}

// --requests: weights, headers, body_file next to the requests file; CLI headers are defaults.
TEST(LoadgenOptionsTest, RequestsFile) {
  TempDir dir;
  dir.write("b.json", R"({"k":1})");
  const std::string file = dir.write("mix.json", R"([
    {"name": "tenantA", "weight": 3, "path": "/feed?t=A", "headers": {"x-tenant": "A"}},
    {"name": "tenantB", "method": "POST", "path": "/feed", "body_file": "b.json"}
  ])");
  auto cli = parse({"--target", "127.0.0.1:80", "--requests", file, "--header", "x-tenant: default",
                    "--rate", "1", "--duration", "1s"});
  ASSERT_TRUE(cli.options) << cli.message;
  const auto& r = cli.options->requests;
  ASSERT_EQ(2u, r.size());
  EXPECT_EQ("tenantA", r[0].name);
  EXPECT_EQ(3.0, r[0].weight);
  ASSERT_EQ(1u, r[0].headers.size());
  EXPECT_EQ("A", r[0].headers[0].second);
  EXPECT_EQ(1.0, r[1].weight);
  EXPECT_EQ("POST", r[1].method);
  EXPECT_EQ(R"({"k":1})", r[1].body);
  ASSERT_EQ(1u, r[1].headers.size());
  EXPECT_EQ("default", r[1].headers[0].second);
  EXPECT_EQ(file, cli.options->requests_file);

  for (const char* bad :
       {"{}", "[]", "[1]", R"([{"weight": "x"}])", R"([{"headers": {"a": 1}}])",
        R"([{"weight": 0}])", R"([{"body": "a", "body_file": "b.json"}])", "[{"}) {
    EXPECT_FALSE(loadRequestsFile(dir.write("bad.json", bad)).isOk()) << bad;
  }
}

}  // namespace
}  // namespace bulwark::bench
