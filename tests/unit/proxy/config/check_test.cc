#include "proxy/config/check.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/unit/proxy/config/test_util.h"

namespace bulwark::config {
namespace {

using ::testing::HasSubstr;

struct CheckRun {
  int code;
  std::string out;
  std::string err;
};

CheckRun check(const std::string& path, bool print_effective = false, bool json_output = false) {
  std::ostringstream out;
  std::ostringstream err;
  int code = runCheck(path, print_effective, json_output, out, err);
  return {code, out.str(), err.str()};
}

/** Writes `text` to a fresh file under the test temp dir. */
std::string writeTemp(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "/bulwark_check_" + name;
  std::ofstream(path) << text;
  return path;
}

// A valid file exits 0 and says OK.
TEST(CheckTest, ValidFileExitsZero) {
  const std::string path = test::dataPath("good/minimal.yaml");
  CheckRun run = check(path);
  EXPECT_EQ(run.code, kCheckValid);
  EXPECT_EQ(run.err, path + ": OK\n");
  EXPECT_EQ(run.out, "");
}

// Warnings alone keep the exit code 0 and are printed with a count.
TEST(CheckTest, WarningsAreAllowed) {
  const std::string path = writeTemp("warn.yaml", std::string(test::kPreamble) + R"(routes:
- {name: r, upstream: grpc-backend, retries: {retryOn: [5xx]}}
)");
  CheckRun run = check(path);
  EXPECT_EQ(run.code, kCheckValid);
  EXPECT_THAT(run.err, HasSubstr(path + ":15:56: warning: routes[0].retries.retryOn: "));
  EXPECT_THAT(run.err, HasSubstr(path + ": OK (1 warning)\n"));
}

// An invalid file exits 1 with one line per problem and a summary.
TEST(CheckTest, InvalidFileExitsOneWithSummary) {
  const std::string path = test::dataPath("bad/duplicate-names.yaml");
  CheckRun run = check(path, /*print_effective=*/true);
  EXPECT_EQ(run.code, kCheckInvalid);
  EXPECT_EQ(run.out, "");  // nothing effective to print
  EXPECT_EQ(run.err, path +
                         ":6:9: error: listeners[1].name: duplicate listener name \"main\" (first "
                         "defined on line 4)\n" +
                         path +
                         ":12:9: error: upstreams[1].name: duplicate upstream name \"backend\" "
                         "(first defined on line 9)\n" +
                         path +
                         ":18:9: error: routes[1].name: duplicate route name \"all\" (first "
                         "defined on line 16)\n"
                         "3 errors, 0 warnings\n");
}

// Missing files and directories exit 2.
TEST(CheckTest, UnreadableFileExitsTwo) {
  CheckRun missing = check(test::dataPath("no-such-file.yaml"));
  EXPECT_EQ(missing.code, kCheckUnreadable);
  EXPECT_THAT(missing.err, HasSubstr("cannot read the file: No such file or directory"));
  CheckRun dir = check(test::dataPath("good"));
  EXPECT_EQ(dir.code, kCheckUnreadable);
  CheckRun json_run = check(test::dataPath("no-such-file.yaml"), false, true);
  EXPECT_EQ(json_run.code, kCheckUnreadable);
  auto doc = nlohmann::json::parse(json_run.out);
  EXPECT_EQ(doc["unreadable"], true);
  EXPECT_EQ(doc["valid"], false);
}

// --print-effective writes the resolved config as JSON on stdout.
TEST(CheckTest, PrintEffectiveWritesJson) {
  CheckRun run = check(test::dataPath("good/edge.yaml"), /*print_effective=*/true);
  EXPECT_EQ(run.code, kCheckValid);
  auto doc = nlohmann::json::parse(run.out);
  EXPECT_EQ(doc["routes"][3]["timeouts"]["request"], "2s");
}

// --output json gives one machine-readable document with every diagnostic.
TEST(CheckTest, JsonOutput) {
  const std::string path = test::dataPath("bad/fractional-duration.yaml");
  CheckRun run = check(path, false, true);
  EXPECT_EQ(run.code, kCheckInvalid);
  EXPECT_EQ(run.err, "");
  auto doc = nlohmann::json::parse(run.out);
  EXPECT_EQ(doc["valid"], false);
  EXPECT_EQ(doc["unreadable"], false);
  EXPECT_EQ(doc["errors"], 2);
  EXPECT_EQ(doc["warnings"], 0);
  ASSERT_EQ(doc["diagnostics"].size(), 2u);
  const auto& d = doc["diagnostics"][1];
  EXPECT_EQ(d["file"], path);
  EXPECT_EQ(d["line"], 16);
  EXPECT_EQ(d["column"], 20);
  EXPECT_EQ(d["severity"], "error");
  EXPECT_EQ(d["fieldPath"], "routes[0].retries.perTryTimeout");
  EXPECT_EQ(d["message"],
            "expected a duration like \"250ms\", got \"0.25s\" (no fractions: write \"250ms\")");
  EXPECT_EQ(d["code"], "BW0103");

  CheckRun ok = check(test::dataPath("good/minimal.yaml"), true, true);
  EXPECT_EQ(ok.code, kCheckValid);
  auto ok_doc = nlohmann::json::parse(ok.out);
  EXPECT_EQ(ok_doc["valid"], true);
  EXPECT_TRUE(ok_doc["diagnostics"].empty());
  EXPECT_EQ(ok_doc["effective"]["routes"][0]["name"], "all");
}

// YAML strings may hold bytes that are not UTF-8 (yaml-cpp passes them through). The JSON
// report used to throw on them (exit 134); now each such byte is U+FFFD, in a diagnostic that
// echoes an unknown field name and in an effective config holding such a value alike.
TEST(CheckTest, JsonOutputReplacesBytesThatAreNotUtf8) {
  const std::string invalid = writeTemp("not-utf8-invalid.yaml", std::string(test::kPreamble) +
                                                                     "routes:\n"
                                                                     "- name: r\n"
                                                                     "  upstream: backend\n"
                                                                     "  upstrea\x80: x\n");
  CheckRun run = check(invalid, false, true);
  EXPECT_EQ(run.code, kCheckInvalid);
  auto doc = nlohmann::json::parse(run.out);
  ASSERT_EQ(doc["diagnostics"].size(), 1u) << run.out;
  EXPECT_THAT(doc["diagnostics"][0]["message"].get<std::string>(),
              HasSubstr("unknown field \"upstrea\xEF\xBF\xBD\""));

  const std::string valid =
      writeTemp("not-utf8-valid.yaml", std::string(test::kPreamble) +
                                           "routes:\n"
                                           "- name: r\n"
                                           "  upstream: backend\n"
                                           "  match: {path: {prefix: /caf\xE9}}\n");
  for (const bool json_output : {false, true}) {
    CheckRun ok = check(valid, true, json_output);
    EXPECT_EQ(ok.code, kCheckValid) << ok.err;
    auto effective = nlohmann::json::parse(ok.out);
    if (json_output) {
      effective = effective["effective"];
    }
    EXPECT_EQ(effective["routes"][0]["match"]["path"]["prefix"], "/caf\xEF\xBF\xBD");
  }
}

}  // namespace
}  // namespace bulwark::config
