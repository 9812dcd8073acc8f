#include "proxy/config/duration.h"

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

}  // namespace
}  // namespace bulwark::config
