// Reason phrases of the status lines bulwark writes on HTTP/1.1: every status RFC 9110 names
// has its own (a 307 path redirect once went out as "307 Unknown"); which headers are hop-by-hop.

#include "proxy/http/headers.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace bulwark::http {
namespace {

TEST(ReasonPhraseTest, RedirectsHaveTheirRfcPhrases) {
  EXPECT_EQ(reasonPhrase(301), "Moved Permanently");
  EXPECT_EQ(reasonPhrase(303), "See Other");
  EXPECT_EQ(reasonPhrase(307), "Temporary Redirect");
  EXPECT_EQ(reasonPhrase(308), "Permanent Redirect");
}

TEST(ReasonPhraseTest, EveryStatusRfc9110NamesHasAPhrase) {
  for (uint32_t status : {100, 101, 200, 201, 202, 203, 204, 205, 206, 300, 301, 302, 303, 304, 307,
                          308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413,
                          414, 415, 416, 417, 421, 422, 426, 500, 501, 502, 503, 504, 505}) {
    EXPECT_NE(reasonPhrase(status), "Unknown") << status;
  }
  EXPECT_EQ(reasonPhrase(599), "Unknown");
}

// Every hop-by-hop header goes, with any header Connection names (but never Content-Length,
// Transfer-Encoding's framing aside, or Host); end-to-end headers of the same lengths stay.
TEST(ToLowerInPlaceTest, EveryByteAtEveryOffsetOfEveryLength) {
  // Only A-Z change, whatever surrounds them (the word-at-a-time path must not let a byte's
  // arithmetic reach its neighbours), for lengths below, at and above a word.
  for (size_t length = 1; length <= 20; ++length) {
    for (size_t at = 0; at < length; ++at) {
      for (int byte = 0; byte < 256; ++byte) {
        std::string text(length, 'Q');
        text[at] = static_cast<char>(byte);
        std::string expected(length, 'q');
        const bool capital = byte >= 'A' && byte <= 'Z';
        expected[at] = static_cast<char>(capital ? byte - 'A' + 'a' : byte);
        toLowerInPlace(text);
        ASSERT_EQ(text, expected) << "length " << length << " offset " << at << " byte " << byte;
      }
    }
  }
}

TEST(StripHopByHopTest, RemovesHopByHopHeadersAndWhatConnectionNames) {
  HeaderMap headers;
  for (const char* name : {"te", "upgrade", "connection", "keep-alive", "http2-settings",
                           "proxy-connection", "transfer-encoding", "proxy-authenticate",
                           "proxy-authorization", "x-secret", "host", "content-length"}) {
    headers.add(name, "v");
  }
  headers.set("connection", "X-Secret, host , Content-Length");
  // End to end, with the lengths of hop-by-hop names.
  for (const char* name : {"ab", "x-abcde", "user-agent", "accept-charset", "x-forwarded-host",
                           "x-correlation-id1", "x-request-start-ms", "x-b3-parentspanid12"}) {
    headers.add(name, "kept");
  }
  stripHopByHop(headers);
  std::vector<std::string> left;
  for (const auto& [name, value] : headers.entries()) {
    left.push_back(name);
  }
  EXPECT_EQ(left,
            (std::vector<std::string>{"host", "content-length", "ab", "x-abcde", "user-agent",
                                      "accept-charset", "x-forwarded-host", "x-correlation-id1",
                                      "x-request-start-ms", "x-b3-parentspanid12"}));
}

}  // namespace
}  // namespace bulwark::http
