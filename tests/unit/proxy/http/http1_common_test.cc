// The HTTP/1 field checks both codecs apply to what llhttp let through: a value is VCHAR,
// obs-text, SP and HTAB only, and a name is a token, whichever byte breaks the rule and wherever
// it sits (values are checked eight bytes at a time); the header reader applies them as it
// finishes each field.

#include "proxy/http/http1_common.h"

#include <string>

#include <gtest/gtest.h>

namespace bulwark::http {
namespace {

bool allowedInValue(unsigned char c) { return (c >= 0x20 && c != 0x7f) || c == '\t'; }

bool allowedInName(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

TEST(Http1FieldCheckTest, EveryByteAtEveryOffsetOfAValue) {
  for (size_t length = 1; length <= 20; ++length) {
    for (size_t at = 0; at < length; ++at) {
      for (int byte = 0; byte < 256; ++byte) {
        std::string value(length, 'v');
        value[at] = static_cast<char>(byte);
        EXPECT_EQ(validHttp1HeaderValue(value), allowedInValue(static_cast<unsigned char>(byte)))
            << "length " << length << ", at " << at << ", byte " << byte;
      }
    }
  }
  EXPECT_TRUE(validHttp1HeaderValue(""));
  EXPECT_TRUE(validHttp1HeaderValue("a\tb c\x80\xff~"));
}

TEST(Http1FieldCheckTest, EveryByteInAName) {
  for (int byte = 0; byte < 256; ++byte) {
    const std::string name = std::string("x-") + static_cast<char>(byte) + "-name";
    EXPECT_EQ(validHttp1HeaderName(name), allowedInName(static_cast<unsigned char>(byte)))
        << "byte " << byte;
  }
  EXPECT_FALSE(validHttp1HeaderName(""));
  EXPECT_TRUE(validHttp1HeaderName("Content-Length"));
}

// The header reader finishes each field lower-cased and trimmed of optional whitespace, and
// remembers the first field that breaks a rule until the next message.
TEST(Http1HeaderReaderTest, FinishesFieldsTrimmedAndRemembersTheFirstInvalidOne) {
  Http1HeaderReader reader;
  HeaderMap headers;
  reader.appendName("X-Pad", headers);
  reader.appendValue(" \t two words\t ");
  reader.appendName("Content-", headers);  // finishes X-Pad; a name in two pieces
  reader.appendName("Type", headers);
  reader.appendValue("text/plain");
  reader.finish(headers);
  EXPECT_EQ(reader.firstInvalid(), nullptr);
  EXPECT_EQ(headers.get("x-pad"), "two words");
  EXPECT_EQ(headers.get("content-type"), "text/plain");

  reader.appendName("X-Bad", headers);
  reader.appendValue("a\x01b");
  reader.appendName("Bad Name", headers);
  reader.appendValue("v");
  reader.finish(headers);
  ASSERT_NE(reader.firstInvalid(), nullptr);
  EXPECT_STREQ(reader.firstInvalid(), "http1.invalid_header_value") << "the first one counts";

  reader.reset();
  EXPECT_EQ(reader.firstInvalid(), nullptr);
  reader.appendName("Bad Name", headers);
  reader.appendValue("v");
  reader.finish(headers);
  ASSERT_NE(reader.firstInvalid(), nullptr);
  EXPECT_STREQ(reader.firstInvalid(), "http1.invalid_header_name");
}

TEST(Http1HeaderReaderTest, OptionalWhitespaceIsSpacesAndTabsAtEitherEnd) {
  EXPECT_EQ(trimOwsView(""), "");
  EXPECT_EQ(trimOwsView(" \t "), "");
  EXPECT_EQ(trimOwsView("a"), "a");
  EXPECT_EQ(trimOwsView("\ta b\t"), "a b");
  EXPECT_EQ(trimOwsView("  a\r"), "a\r") << "only SP and HTAB are optional whitespace";
  EXPECT_EQ(trimOws(" x "), "x");
}

}  // namespace
}  // namespace bulwark::http
