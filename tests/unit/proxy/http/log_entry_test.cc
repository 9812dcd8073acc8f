// http::LogEntry and appendJsonString, the access log's line writer: every line is valid JSON
// whatever bytes a request carried (control characters, quotes, broken UTF-8), valid UTF-8 comes
// through unchanged, and the text form quotes what would break key=value parsing.

#include "proxy/http/log_entry.h"

#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace bulwark::http {
namespace {

std::string asJsonString(std::string_view text) {
  std::string out;
  appendJsonString(out, text);
  return out;
}

TEST(LogEntryTest, JsonHasEveryFieldInOrderWithItsType) {
  std::string owned_source = "kept by the entry";
  LogEntry entry;
  entry.add("method", "GET");
  entry.add("response_code", 503U);
  entry.add("duration", int64_t{-1});
  entry.addOwned("span_id", std::move(owned_source));
  entry.addJson("decisions", R"({"route":"r","attempts":[{"n":1}]})");
  entry.add("empty", "");
  entry.add("dry_run", std::vector<std::string>{"rate_limit", "sh\"ed"});
  const std::string line = entry.json();
  EXPECT_EQ(
      line,
      R"({"method":"GET","response_code":503,"duration":-1,"span_id":"kept by the entry",)"
      R"("decisions":{"route":"r","attempts":[{"n":1}]},"empty":"","dry_run":["rate_limit","sh\"ed"]})");
  const auto parsed = nlohmann::json::parse(line);
  EXPECT_EQ(parsed["response_code"], 503);
  EXPECT_EQ(parsed["decisions"]["attempts"][0]["n"], 1);
}

/** Writes a fixed object, standing in for the decision record. */
class FixedJson final : public JsonWritable {
public:
  explicit FixedJson(std::string json) : json_(std::move(json)) {}
  void appendJson(std::string& out) const override { out.append(json_); }

private:
  std::string json_;
};

// A writer field renders itself in place, wherever it sits, and the line is the same whether it
// is appended to an empty string or to one that already holds text.
TEST(LogEntryTest, WriterFieldsRenderInPlaceAmongTheOthers) {
  const FixedJson decisions(R"({"route":"r"})");
  const FixedJson empty("[]");
  LogEntry entry;
  entry.addJson("first", empty);
  entry.add("method", "GET");
  entry.addJson("decisions", decisions);
  entry.addJson("again", decisions);
  entry.add("response_code", 200);
  entry.addJson("last", empty);
  const std::string expected =
      R"({"first":[],"method":"GET","decisions":{"route":"r"},"again":{"route":"r"},)"
      R"("response_code":200,"last":[]})";
  EXPECT_EQ(entry.json(), expected);
  std::string out = "prefix ";
  entry.appendJson(out);
  EXPECT_EQ(out, "prefix " + expected);
  EXPECT_EQ(entry.text(), R"(first=[] method=GET decisions={"route":"r"} again={"route":"r"} )"
                          R"(response_code=200 last=[])");
}

// The room made for a line covers the worst case: every byte a control character (6 bytes out)
// and the widest numbers.
TEST(LogEntryTest, WorstCaseValuesFitTheRoomMadeForThem) {
  const std::string controls(300, '\x01');
  LogEntry entry;
  entry.add("a", controls);
  entry.add("min", INT64_MIN);
  entry.add("max", INT64_MAX);
  entry.add("b", std::string_view(controls).substr(0, 7));
  const std::string line = entry.json();
  const auto parsed = nlohmann::json::parse(line);
  EXPECT_EQ(parsed["a"].get<std::string>(), controls);
  EXPECT_EQ(parsed["min"].get<int64_t>(), INT64_MIN);
  EXPECT_EQ(parsed["max"].get<int64_t>(), INT64_MAX);
  EXPECT_EQ(line.size(),
            std::string(R"({"a":"","min":,"max":,"b":""})").size() + 300 * 6 + 20 + 19 + 7 * 6);
}

TEST(LogEntryTest, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(asJsonString("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(asJsonString("\n\r\t\b\f"), R"("\n\r\t\b\f")");
  EXPECT_EQ(asJsonString(std::string("\x01\x1f", 2)), R"("\u0001\u001f")");
  EXPECT_EQ(asJsonString(std::string("nul\0byte", 8)), R"("nul\u0000byte")");
  EXPECT_EQ(asJsonString("\x7f"), "\"\x7f\"");  // DEL is allowed in JSON strings
}

// Plain runs are scanned 8 bytes at a time: a byte that needs a look must be found at every
// offset of a word and across word boundaries, and a plain string of any length must come out
// unchanged.
TEST(LogEntryTest, FindsWhatNeedsEscapingAtEveryOffset) {
  const std::string fffd = "\xEF\xBF\xBD";
  const std::vector<std::pair<std::string, std::string>> specials = {
      {"\"", "\\\""},
      {"\\", "\\\\"},
      {"\n", "\\n"},
      {"\x1f", "\\u001f"},
      {std::string(1, '\0'), "\\u0000"},
      {"\xC3\xA9", "\xC3\xA9"},
      {"\xFF", fffd},
      {"\x80", fffd},
      {"\x7f", "\x7f"},
      {" ", " "}};
  for (size_t length = 0; length <= 24; ++length) {
    const std::string plain(length, 'a');
    EXPECT_EQ(asJsonString(plain), "\"" + plain + "\"") << length;
    for (size_t at = 0; at <= length; ++at) {
      for (const auto& [raw, escaped] : specials) {
        const std::string text = plain.substr(0, at) + raw + plain.substr(at);
        EXPECT_EQ(asJsonString(text),
                  "\"" + plain.substr(0, at) + escaped + plain.substr(at) + "\"")
            << "length " << length << ", at " << at << ", byte "
            << static_cast<int>(static_cast<unsigned char>(raw[0]));
      }
    }
  }
}

TEST(LogEntryTest, KeepsValidUtf8AndReplacesWhatIsNot) {
  EXPECT_EQ(asJsonString("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"),
            "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"");
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(asJsonString("\xFF"), "\"" + fffd + "\"");
  EXPECT_EQ(asJsonString("a\xC3"), "\"a" + fffd + "\"");                      // truncated sequence
  EXPECT_EQ(asJsonString("\xC0\xAF"), "\"" + fffd + fffd + "\"");             // overlong '/'
  EXPECT_EQ(asJsonString("\xED\xA0\x80"), "\"" + fffd + fffd + fffd + "\"");  // a UTF-16 surrogate
  EXPECT_EQ(asJsonString("\xF4\x90\x80\x80"),
            "\"" + fffd + fffd + fffd + fffd + "\"");  // > U+10FFFF
}

TEST(LogEntryTest, AnyBytesGiveValidJsonAndValidUtf8RoundTrips) {
  std::mt19937 rng(20261207);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> length(0, 40);
  for (int round = 0; round < 5000; ++round) {
    std::string raw;
    const int n = length(rng);
    for (int i = 0; i < n; ++i) {
      raw.push_back(static_cast<char>(byte(rng)));
    }
    const std::string line = asJsonString(raw);
    nlohmann::json parsed;
    ASSERT_NO_THROW(parsed = nlohmann::json::parse(line)) << "round " << round;
    // nlohmann::json::parse checks UTF-8; where the input was valid it must come back as it was.
    bool valid = true;
    try {
      (void)nlohmann::json(raw).dump();
    } catch (const nlohmann::json::type_error&) {
      valid = false;
    }
    if (valid) {
      EXPECT_EQ(parsed.get<std::string>(), raw) << "round " << round;
    }
  }
}

TEST(LogEntryTest, TextQuotesOnlyWhatNeedsIt) {
  LogEntry entry;
  entry.add("method", "GET");
  entry.add("user_agent", "curl/8.0 (x)");
  entry.add("path", "/q?a=b");
  entry.add("empty", "");
  entry.add("response_code", 200);
  entry.addJson("decisions", R"({"route":"r"})");
  EXPECT_EQ(entry.text(),
            R"-(method=GET user_agent="curl/8.0 (x)" path="/q?a=b" empty="" response_code=200 )-"
            R"(decisions={"route":"r"})");
}

}  // namespace
}  // namespace bulwark::http
