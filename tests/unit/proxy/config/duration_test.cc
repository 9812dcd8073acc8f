#include "proxy/config/duration.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace bulwark::config {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

struct Valid {
  const char* text;
  Duration expected;
};

// GEP-2257 spellings parse to the right number of milliseconds.
TEST(DurationTest, ParsesGep2257Durations) {
  const Valid cases[] = {
      {"0s", Duration(0)},
      {"0ms", Duration(0)},
      {"250ms", milliseconds(250)},
      {"1s", seconds(1)},
      {"1m30s", seconds(90)},
      {"24h", hours(24)},
      {"1h30m30s500ms", hours(1) + minutes(30) + seconds(30) + milliseconds(500)},
      {"99999ms", milliseconds(99999)},
      {"30s1m", seconds(90)},  // any order, as Go's time.ParseDuration
  };
  for (const Valid& c : cases) {
    auto parsed = parseDuration(c.text);
    ASSERT_TRUE(parsed.isOk()) << c.text << ": " << parsed.error();
    EXPECT_EQ(parsed->count(), c.expected.count()) << c.text;
  }
}

struct Invalid {
  const char* text;
  const char* message;
};

// Everything outside the grammar is rejected with the common hint and a specific reason.
TEST(DurationTest, RejectsWithHint) {
  const Invalid cases[] = {
      {"", "expected a duration like \"250ms\", got an empty string"},
      {"0.25s",
       "expected a duration like \"250ms\", got \"0.25s\" (no fractions: write \"250ms\")"},
      {"1.5m", "expected a duration like \"250ms\", got \"1.5m\" (no fractions: write \"1m30s\")"},
      {"0.0001ms", "expected a duration like \"250ms\", got \"0.0001ms\" (no fractions)"},
      {"250", "expected a duration like \"250ms\", got \"250\" (add a unit: h, m, s or ms)"},
      {"2.5", "expected a duration like \"250ms\", got \"2.5\" (add a unit: h, m, s or ms)"},
      {"-1s", "expected a duration like \"250ms\", got \"-1s\" (durations cannot be negative)"},
      {"+1s", "expected a duration like \"250ms\", got \"+1s\" (write it without a sign)"},
      {"5us", "expected a duration like \"250ms\", got \"5us\" (units are h, m, s and ms)"},
      {"1d", "expected a duration like \"250ms\", got \"1d\" (units are h, m, s and ms)"},
      {"2sec", "expected a duration like \"250ms\", got \"2sec\" (units are h, m, s and ms)"},
      {"1h30",
       "expected a duration like \"250ms\", got \"1h30\" (every number needs a unit: h, "
       "m, s or ms)"},
      {"abc", "expected a duration like \"250ms\", got \"abc\""},
      {"s", "expected a duration like \"250ms\", got \"s\""},
      {"1 s", "expected a duration like \"250ms\", got \"1 s\" (units are h, m, s and ms)"},
      {"123456ms",
       "expected a duration like \"250ms\", got \"123456ms\" (at most 5 digits per unit: write "
       "\"2m3s456ms\")"},
      {"1h1m1s1ms1h",
       "expected a duration like \"250ms\", got \"1h1m1s1ms1h\" (at most 4 parts: write "
       "\"2h1m1s1ms\")"},
      {"9999999999999s", "expected a duration like \"250ms\", got \"9999999999999s\" (too large)"},
  };
  for (const Invalid& c : cases) {
    auto parsed = parseDuration(c.text);
    ASSERT_FALSE(parsed.isOk()) << c.text;
    EXPECT_EQ(parsed.error(), c.message) << c.text;
  }
}

// formatDuration writes the shortest GEP-2257 spelling, which parses back to the same value.
TEST(DurationTest, FormatsShortestSpellingAndRoundTrips) {
  EXPECT_EQ(formatDuration(Duration(0)), "0s");
  EXPECT_EQ(formatDuration(milliseconds(250)), "250ms");
  EXPECT_EQ(formatDuration(seconds(90)), "1m30s");
  EXPECT_EQ(formatDuration(hours(24)), "24h");
  EXPECT_EQ(formatDuration(milliseconds(1500)), "1s500ms");
  EXPECT_EQ(formatDuration(hours(1) + milliseconds(5)), "1h5ms");
  for (int64_t ms : {1, 999, 1000, 59999, 60000, 3599999, 86400000, 90061001}) {
    auto parsed = parseDuration(formatDuration(Duration(ms)));
    ASSERT_TRUE(parsed.isOk()) << ms;
    EXPECT_EQ(parsed->count(), ms);
  }
}

// Parse, print, re-parse: every accepted spelling prints canonically (each unit once, greatest
// first) and the printed form parses to the same value. Sums above the largest canonical value
// are too large: 99999h99999m used to be accepted and printed as "101665h39m", which the parser
// rejects.
TEST(DurationTest, ParsePrintReparseRoundTrips) {
  for (const char* text : {"99999h59m59s999ms", "99999h", "5000m", "90000s", "99999ms99999s",
                           "1h1m1s1ms", "0ms", "99999m99999s", "99998h119m", "30s1m"}) {
    auto parsed = parseDuration(text);
    ASSERT_TRUE(parsed.isOk()) << text << ": " << parsed.error();
    const std::string printed = formatDuration(*parsed);
    auto reparsed = parseDuration(printed);
    ASSERT_TRUE(reparsed.isOk()) << text << " printed as " << printed << ": " << reparsed.error();
    EXPECT_EQ(reparsed->count(), parsed->count()) << text << " printed as " << printed;
  }
  EXPECT_EQ(formatDuration(kMaxConfigDuration), "99999h59m59s999ms");
  EXPECT_EQ(parseDuration("99999h59m59s999ms")->count(), kMaxConfigDuration.count());
  for (const char* text : {"99999h99999m", "99999h60m", "99999h59m60s", "99999h59m59s1000ms",
                           "99999h99999h", "99999h99999m99999s99999ms"}) {
    auto parsed = parseDuration(text);
    ASSERT_FALSE(parsed.isOk()) << text;
    EXPECT_EQ(parsed.error(), std::string("expected a duration like \"250ms\", got \"") + text +
                                  "\" (too large: at most 99999h59m59s999ms)");
  }
}

// Every value from 0 to kMaxConfigDuration formats to a spelling that parses back: the values
// around each unit boundary and the maximum, and a deterministic spread of others.
TEST(DurationTest, EveryValueUpToTheMaximumRoundTrips) {
  std::vector<int64_t> values = {0, kMaxConfigDuration.count(), kMaxConfigDuration.count() - 1};
  for (int64_t unit : {int64_t{1}, int64_t{1000}, int64_t{60000}, int64_t{3600000}}) {
    for (int64_t k : {1, 59, 60, 999, 1000, 99998, 99999}) {
      values.push_back(k * unit);
      values.push_back(k * unit - 1);
      values.push_back(k * unit + 1);
    }
  }
  uint64_t state = 0x9e3779b97f4a7c15ULL;
  for (int i = 0; i < 20000; ++i) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    values.push_back(
        static_cast<int64_t>((state >> 11) % static_cast<uint64_t>(kMaxConfigDuration.count())));
  }
  for (int64_t ms : values) {
    if (ms < 0 || ms > kMaxConfigDuration.count()) {
      continue;
    }
    const std::string printed = formatDuration(Duration(ms));
    auto parsed = parseDuration(printed);
    ASSERT_TRUE(parsed.isOk()) << ms << " printed as " << printed << ": " << parsed.error();
    ASSERT_EQ(parsed->count(), ms) << printed;
  }
  EXPECT_EQ(formatDuration(kMaxConfigDuration + Duration(1)), "100000h")
      << "above the maximum there is no spelling";
}

// Numbers that used to escape as exceptions (std::stod out_of_range in the "did you mean"
// reading) or overflow a signed sum are ordinary errors now, with the usual hints.
TEST(DurationTest, HostileNumbersAreErrorsNotExceptions) {
  const std::string zeros(400, '0');
  const std::string nines(400, '9');
  const Invalid cases[] = {
      {"999999999999h999999999999h999999999999h", " (too large)"},
      {"999999999999h999999999999h", " (at most 5 digits per unit)"},
      {"99999h99999h99999h99999h99999h", " (at most 4 parts)"},
      {"0.0000125h", " (no fractions: write \"45ms\")"},
      {"1.50000000000000000000000000000s", " (no fractions: write \"1s500ms\")"},
      {"99999.5h", " (no fractions: write \"99999h30m\")"},
      {"100000.5h", " (no fractions)"},  // more than the maximum: no suggestion
  };
  for (const Invalid& c : cases) {
    auto parsed = parseDuration(c.text);
    ASSERT_FALSE(parsed.isOk()) << c.text;
    EXPECT_TRUE(parsed.error().ends_with(c.message)) << parsed.error();
  }
  for (const std::string& text : {"0." + zeros + "1s", nines + ".5s", "1." + zeros + "1ms",
                                  "." + nines + "h", nines + "." + nines + "ms"}) {
    auto parsed = parseDuration(text);
    ASSERT_FALSE(parsed.isOk()) << text;
    EXPECT_TRUE(parsed.error().ends_with(" (no fractions)")) << parsed.error();
  }
  std::string many_parts;
  for (int i = 0; i < 10000; ++i) {
    many_parts += "1s";
  }
  auto parsed = parseDuration(many_parts);
  ASSERT_FALSE(parsed.isOk());
  EXPECT_TRUE(parsed.error().ends_with(" (at most 4 parts: write \"2h46m40s\")")) << parsed.error();
}

}  // namespace
}  // namespace bulwark::config
