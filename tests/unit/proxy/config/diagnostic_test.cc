// The diagnostic sink bounds what one file can make it hold: a count of reports and the length of
// the file's text each one quotes.

#include "proxy/config/diagnostic.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace bulwark::config {
namespace {

using ::testing::HasSubstr;

TEST(DiagnosticSinkTest, KeepsTheFirstReportsInPositionOrderAndCountsTheRest) {
  DiagnosticSink sink("f.yaml");
  for (int i = 0; i < static_cast<int>(kMaxDiagnostics) + 7; ++i) {
    sink.error(Mark{1000 - i, 1}, "p", "bad", codes::kInvalidValue);
  }
  sink.warning(Mark{1, 1}, "q", "odd", codes::kIneffectiveSetting);
  const std::vector<ConfigDiagnostic> kept = sink.take();
  ASSERT_EQ(kept.size(), kMaxDiagnostics + 1);
  EXPECT_EQ(kept.front().line, 1000 - static_cast<int>(kMaxDiagnostics) + 1);
  EXPECT_EQ(kept[kMaxDiagnostics - 1].line, 1000);
  const ConfigDiagnostic& closing = kept.back();
  EXPECT_FALSE(closing.warning) << "left-out errors keep the file invalid";
  EXPECT_EQ(closing.code, codes::kTooLarge);
  EXPECT_EQ(closing.file, "f.yaml");
  EXPECT_THAT(closing.message, HasSubstr("7 more errors and 1 more warning not shown"));
  EXPECT_TRUE(sink.take().empty()) << "take() empties the sink";
}

TEST(DiagnosticSinkTest, OnlyWarningsLeftOutCloseWithAWarning) {
  DiagnosticSink sink("f.yaml");
  for (size_t i = 0; i < kMaxDiagnostics + 2; ++i) {
    sink.warning(Mark{1, 1}, "", "odd", codes::kIneffectiveSetting);
  }
  const std::vector<ConfigDiagnostic> kept = sink.take();
  ASSERT_EQ(kept.size(), kMaxDiagnostics + 1);
  EXPECT_TRUE(kept.back().warning);
  EXPECT_EQ(countErrors(kept), 0u);
  EXPECT_THAT(kept.back().message, HasSubstr("2 more warnings not shown"));
}

TEST(DiagnosticSinkTest, LongQuotedTextLosesItsMiddleOnCharacterBoundaries) {
  DiagnosticSink sink("f.yaml");
  // Two-byte characters from an odd offset, so the limit falls inside one.
  std::string utf8 = "x";
  for (int i = 0; i < 1000; ++i) {
    utf8 += "\xC3\xA9";  // e-acute
  }
  utf8 += "!";
  sink.error(Mark{2, 3}, utf8, utf8, codes::kUnknownField);
  sink.error(Mark{2, 4}, "short.path", "short message", codes::kUnknownField);
  const std::vector<ConfigDiagnostic> kept = sink.take();
  ASSERT_EQ(kept.size(), 2u);
  for (const std::string* text : {&kept[0].field_path, &kept[0].message}) {
    EXPECT_LE(text->size(), kMaxDiagnosticText + 32);
    const size_t marker = text->find("[...1704 bytes...]");
    ASSERT_NE(marker, std::string::npos) << *text;
    EXPECT_EQ((marker - 1) % 2, 0u) << "no character is split at the head";
    const std::string tail = text->substr(marker + 18);
    EXPECT_EQ((tail.size() - 1) % 2, 0u) << "no character is split at the tail";
    EXPECT_EQ(tail.back(), '!') << "the end of the text is kept";
  }
  EXPECT_EQ(kept[1].field_path, "short.path");
  EXPECT_EQ(kept[1].message, "short message");
}

}  // namespace
}  // namespace bulwark::config
