// Inputs the config fuzzer (tests/fuzz) kept: each once crashed `bulwark check` and a reload
// (an exception out of the loader, a signed overflow, a stack overflow), kept the loader busy for
// minutes, or was accepted with an effective config that did not load back. Each must now be an
// ordinary diagnostic at the field that holds the bad value, from the reader of that value rather
// than the loader's last-resort catch.

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "proxy/config/duration.h"
#include "proxy/config/effective_json.h"
#include "proxy/config/parser.h"
#include "tests/unit/proxy/config/full_schema.h"
#include "tests/unit/proxy/config/test_util.h"

namespace bulwark::config {
namespace {

std::vector<std::filesystem::path> keptInputs(std::string_view prefix) {
  std::vector<std::filesystem::path> files;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(BULWARK_FUZZ_CORPUS_DIR) + "/config")) {
    if (entry.path().filename().string().starts_with(prefix)) {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

struct Expected {
  std::string file;
  std::string field_path;
  std::string message_part;
};

// Every kept crash input is rejected with a diagnostic from the value's own reader.
TEST(FuzzRegressionsTest, KeptCrashInputsAreDiagnostics) {
  const Expected expected[] = {
      {"crash-duration-fraction-overflow.yaml", "routes[0].timeouts.request", "(no fractions)"},
      {"crash-duration-fraction-underflow.yaml", "routes[0].timeouts.request", "(no fractions)"},
      {"crash-duration-sum-overflow.yaml", "routes[0].timeouts.request", "(too large)"},
      {"crash-duration-too-large-to-print.yaml", "routes[0].timeouts.request",
       "(too large: at most 99999h59m59s999ms)"},
      {"crash-integer-regex-stack.yaml", "routes[0].retries.attempts", "is too large"},
      {"crash-number-regex-stack.yaml", "observability.accessLog.sample", "must be between"},
  };
  const auto files = keptInputs("crash-");
  ASSERT_EQ(files.size(), std::size(expected)) << "a new crash input needs its expectation here";
  for (size_t i = 0; i < files.size(); ++i) {
    const Expected& e = expected[i];
    ASSERT_EQ(files[i].filename(), e.file);
    const LoadResult result = loadConfigFile(files[i]);
    EXPECT_FALSE(result.ok()) << e.file;
    ASSERT_EQ(countErrors(result.diagnostics), 1u)
        << e.file << ": " << ::testing::PrintToString(test::formatted(result));
    const ConfigDiagnostic& d = result.diagnostics.front();
    EXPECT_EQ(d.field_path, e.field_path) << e.file;
    EXPECT_THAT(d.message, ::testing::HasSubstr(e.message_part)) << e.file;
    EXPECT_EQ(d.code, codes::kInvalidValue) << e.file;
  }
}

// A few kilobytes of aliases nested in aliases expand to a million values or a gigabyte of text:
// the load stops at kMaxConfigValues or kMaxConfigTextBytes with one error instead of reading
// (and compiling regexes) for minutes. One
// input also puts a long regular expression behind the aliases: compiled once per load, not per
// use (the fuzz smoke starts from these inputs and fails on one that takes 30 s).
TEST(FuzzRegressionsTest, AliasExpansionStopsAtTheValueLimit) {
  const auto files = keptInputs("hang-");
  ASSERT_EQ(files.size(), 2u);
  for (const auto& file : files) {
    const LoadResult result = loadConfigFile(file);
    EXPECT_FALSE(result.ok()) << file.filename();
    size_t too_large = 0;
    for (const ConfigDiagnostic& d : result.diagnostics) {
      too_large += d.code == codes::kTooLarge ? 1 : 0;
    }
    EXPECT_EQ(too_large, 1u) << ::testing::PrintToString(test::formatted(result));
    EXPECT_LT(result.diagnostics.size(), 100u) << "bounded: one per route read before the limit";
  }
}

// Far fewer values than kMaxConfigValues, but each a 4 KB string: copying them all into the
// config would take 40 MB, so the text limit stops the load.
TEST(FuzzRegressionsTest, LongTextBehindAliasesStopsAtTheTextLimit) {
  std::string headers = "&h {name: x-a, exact: " + std::string(4096, 'a') + "}";
  for (int i = 1; i < 100; ++i) {
    headers += ", *h";
  }
  std::string yaml = test::kPreamble;
  yaml += "routes:\n- {name: r0, upstream: backend, match: {headers: &l [" + headers + "]}}\n";
  for (int i = 1; i < 100; ++i) {
    yaml += fmt::format("- {{name: r{}, upstream: backend, match: {{headers: *l}}}}\n", i);
  }
  const LoadResult result = test::loadText(yaml);
  size_t too_large = 0;
  for (const ConfigDiagnostic& d : result.diagnostics) {
    if (d.code == codes::kTooLarge) {
      ++too_large;
      EXPECT_THAT(d.message, ::testing::HasSubstr("16 MiB of text"));
    }
  }
  EXPECT_EQ(too_large, 1u) << ::testing::PrintToString(test::formatted(result));
}

// Aliases multiply one problem that quotes a 20 KB key into twenty thousand reports: the load
// stops at kMaxConfigTextBytes, keeps kMaxDiagnostics of the reports made by then, each quoting a
// bounded part of the key, and counts the rest.
TEST(FuzzRegressionsTest, AliasedProblemsAreReportedBoundedly) {
  const auto files = keptInputs("oom-");
  ASSERT_EQ(files.size(), 1u);
  const LoadResult result = loadConfigFile(files.front());
  EXPECT_FALSE(result.ok());
  // The kept reports, the text limit's (why reading stopped), the closing count.
  ASSERT_EQ(result.diagnostics.size(), kMaxDiagnostics + 2);
  size_t text_limit = 0;
  for (const ConfigDiagnostic& d : result.diagnostics) {
    EXPECT_LE(d.field_path.size() + d.message.size(), 2 * kMaxDiagnosticText + 64);
    text_limit += d.message.find("16 MiB of text") != std::string::npos ? 1 : 0;
  }
  EXPECT_EQ(text_limit, 1u);
  const ConfigDiagnostic& closing = result.diagnostics.back();
  EXPECT_EQ(closing.code, codes::kTooLarge);
  EXPECT_FALSE(closing.warning);
  EXPECT_THAT(closing.message, ::testing::MatchesRegex(".*; [0-9]+ more errors not shown"));
}

/** toJson output loads back to the same effective config. */
void expectEffectiveRoundTrip(const LoadResult& first, const std::string& what) {
  ASSERT_TRUE(first.ok()) << what << ": " << ::testing::PrintToString(test::formatted(first));
  const nlohmann::json j = toJson(*first.config);
  const LoadResult second = test::loadText(j.dump(2));
  ASSERT_TRUE(second.ok()) << what << ": " << ::testing::PrintToString(test::formatted(second));
  EXPECT_EQ(toJson(*second.config), j) << what;
}

// The kept round-trip inputs are valid, and `check --print-effective` prints what loads back.
TEST(FuzzRegressionsTest, KeptRoundTripInputsPrintWhatLoadsBack) {
  const auto files = keptInputs("roundtrip-");
  ASSERT_FALSE(files.empty());
  for (const auto& file : files) {
    expectEffectiveRoundTrip(loadConfigFile(file), file.filename());
  }
}

// Parse, print, re-parse over the whole schema at the extremes: every duration of the full
// example set to the largest spellable value, and a backoff whose default maxInterval (10 x base)
// would exceed it.
TEST(FuzzRegressionsTest, EffectiveConfigAtTheLimitsRoundTrips) {
  std::string yaml = test::kFullSchemaYaml;
  size_t replaced = 0;
  // Every plain value that is a duration: after ": ", "[", "{" or ", ", up to a delimiter.
  for (size_t at = 0; at < yaml.size(); ++at) {
    const bool value_start =
        at > 0 && (yaml[at - 1] == ' ' || yaml[at - 1] == '[' || yaml[at - 1] == '{');
    if (!value_start || yaml[at] < '0' || yaml[at] > '9') {
      continue;
    }
    const size_t end = yaml.find_first_of(",}] \n", at);
    const std::string token = yaml.substr(at, end - at);
    // baseEjectionTime stays: the default maxEjectionTime (300s) must not be shorter.
    const std::string_view base_key = "baseEjectionTime: ";
    const bool base_ejection =
        at >= base_key.size() && yaml.compare(at - base_key.size(), base_key.size(), base_key) == 0;
    if (!base_ejection && parseDuration(token).isOk()) {
      yaml.replace(at, token.size(), "99999h59m59s999ms");
      ++replaced;
    }
  }
  ASSERT_GT(replaced, 10u);
  expectEffectiveRoundTrip(test::loadText(yaml), "full schema at the limits");

  const LoadResult backoff = test::loadText(std::string(test::kPreamble) + R"(routes:
- name: r
  upstream: backend
  retries: {attempts: 2, backoff: {baseInterval: 99999h}}
)");
  expectEffectiveRoundTrip(backoff, "backoff without maxInterval");
  EXPECT_EQ(backoff.config->routes[0].policies.retries->backoff.max_interval, kMaxConfigDuration);
}

}  // namespace
}  // namespace bulwark::config
