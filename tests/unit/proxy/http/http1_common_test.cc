// The HTTP/1 field checks both codecs apply to what llhttp let through: a value is VCHAR,
// obs-text, SP and HTAB only, and a name is a token, whichever byte breaks the rule and wherever
// it sits (values are checked eight bytes at a time).

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

}  // namespace
}  // namespace bulwark::http
