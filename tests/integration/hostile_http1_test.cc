// Hostile HTTP/1.1 input against the real bulwark binary: limits answer 431/413, smuggling shapes
// answer 400 and close, the upstream never sees a rejected request, every rejection is counted in
// bulwark_downstream_protocol_errors_total{reason}, and bulwark keeps serving afterwards.

#include <signal.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/hostile_fixture.h"
#include "tests/support/admin_client.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/http1_client.h"
#include "tests/support/wait.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;

constexpr auto kHeaderReadTimeout = 1s;

/** What the upstream may have seen of a rejected request. */
enum class UpstreamSees {
  /** Rejected before routing: not a single byte reaches the upstream. */
  Nothing,
  /** Rejected mid-body (chunk framing, body limit): at most a request cut off before its end. */
  AtMostCutOff,
};

/** The shared bulwark with an HTTP/1.1 listener. */
class HostileHttp1Test : public HostileProxyTest {
protected:
  static void SetUpTestSuite() { startShared("http1"); }
  static void TearDownTestSuite() { stopShared(); }

  static std::string expectStillServing() { return expectStillServingOver<Http1Client>(); }

  /** Everything the upstream logged since SetUp() is either the probe or allowed by `sees`. */
  void expectUpstreamSaw(UpstreamSees sees, const std::string& probe_path) {
    EXPECT_TRUE(upstream_->waitForRequests(baseline_ + 1, deadlineIn(2s)));
    for (const auto& req : newUpstreamRequests()) {
      if (req.path == probe_path) {
        continue;
      }
      if (sees == UpstreamSees::AtMostCutOff) {
        EXPECT_FALSE(req.complete)
            << "a rejected request reached the upstream whole: " << req.method << " " << req.path
            << " (" << req.body_bytes << " body bytes)";
      } else {
        ADD_FAILURE() << "the upstream saw a rejected request: " << req.method << " " << req.path;
      }
    }
  }

  /**
   * Sends `raw` on a fresh connection and expects `status` with `Connection: close`, the
   * connection closed by bulwark, `reason` counted once more, the upstream untouched (per
   * `sees`), and bulwark still serving.
   */
  void expectRejected(const std::string& raw, int status, const std::string& reason,
                      UpstreamSees sees = UpstreamSees::Nothing) {
    baseline_ = upstream_->requestCount();
    double before = protocolErrors(reason);
    Http1Client client(port());
    ASSERT_TRUE(client.connect(deadlineIn(2s))) << client.lastError();
    // Bulwark may close while a large attack is still being written; the reply is what counts.
    client.sendRaw(raw, deadlineIn(2s));
    auto r = client.readResponse(deadlineIn(3s));
    ASSERT_TRUE(r) << "no response to the hostile request: " << client.lastError();
    EXPECT_EQ(status, r->status) << r->body;
    EXPECT_EQ("close", r->header("connection").value_or(""))
        << "a rejection must announce the close";
    EXPECT_TRUE(client.waitForClose(deadlineIn(2s)))
        << "bulwark kept the connection open after " << status;
    EXPECT_TRUE(waitForMetric(
        bulwark_->adminPort(), kProtocolErrors, {{"listener", "public"}, {"reason", reason}},
        [&](double v) { return v >= before + 1; }, deadlineIn(2s)))
        << "reason " << reason << " not counted (" << r->body << ")";
    std::string probe = expectStillServing();
    expectUpstreamSaw(sees, probe);
  }
};

std::string headerLines(int count) {
  std::string out;
  for (int i = 0; i < count; ++i) {
    out += "X-H" + std::to_string(i) + ": v\r\n";
  }
  return out;
}

// --- Limits -----------------------------------------------------------------------------------

TEST_F(HostileHttp1Test, RequestLineOverHeaderLimitGets431) {
  std::string target = "/" + std::string(kMaxHeaderBytes + 100, 'a');
  expectRejected("GET " + target + " HTTP/1.1\r\nHost: h\r\n\r\n", 431,
                 "http1.request_line_too_large");
}

TEST_F(HostileHttp1Test, HeadersOverByteLimitGet431) {
  std::string big = std::string(kMaxHeaderBytes + 100, 'b');
  expectRejected("GET /big HTTP/1.1\r\nHost: h\r\nX-Big: " + big + "\r\n\r\n", 431,
                 "http1.headers_too_large");
}

TEST_F(HostileHttp1Test, TooManyHeadersGet431) {
  expectRejected("GET /many HTTP/1.1\r\nHost: h\r\n" + headerLines(kMaxHeadersCount + 5) + "\r\n",
                 431, "http1.too_many_headers");
}

TEST_F(HostileHttp1Test, HeadersAtTheCountLimitPass) {
  // Host plus 19 more: exactly the limit.
  Http1Client client(port());
  ASSERT_TRUE(client.sendRaw("GET /at-limit HTTP/1.1\r\nHost: h\r\n" +
                             headerLines(kMaxHeadersCount - 1) + "\r\n"));
  auto r = client.readResponse(deadlineIn(3s));
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(200, r->status);
  EXPECT_EQ("/at-limit", r->header("x-echo-path").value_or(""));
}

TEST_F(HostileHttp1Test, ContentLengthOverBodyLimitGets413) {
  std::string body(kMaxBodyBytes + 1, 'x');
  expectRejected("POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n" + body,
                 413, "http1.request_body_too_large");
}

TEST_F(HostileHttp1Test, ChunkedBodyOverBodyLimitGets413) {
  // Two chunks: the first fits, the second crosses the limit. The headers may already be on their
  // way upstream (chunked bodies stream), but no whole request may arrive there.
  std::string first(kMaxBodyBytes - 10, 'x');
  std::string second(20, 'y');
  char size1[16], size2[16];
  std::snprintf(size1, sizeof(size1), "%zx", first.size());
  std::snprintf(size2, sizeof(size2), "%zx", second.size());
  expectRejected("POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" +
                     std::string(size1) + "\r\n" + first + "\r\n" + size2 + "\r\n" + second +
                     "\r\n0\r\n\r\n",
                 413, "http1.request_body_too_large", UpstreamSees::AtMostCutOff);
}

TEST_F(HostileHttp1Test, BodyAtTheLimitPasses) {
  Http1Client client(port());
  auto r = client.request(http1Request("POST", "/exact", {}, std::string(kMaxBodyBytes, 'z')),
                          deadlineIn(3s));
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(200, r->status);
  EXPECT_EQ(std::to_string(kMaxBodyBytes), r->header("x-echo-body-bytes").value_or(""));
}

// --- Smuggling shapes (RFC 9112 §6.3) ---------------------------------------------------------

TEST_F(HostileHttp1Test, ContentLengthWithTransferEncodingGets400AndClose) {
  expectRejected(
      "POST /both HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n0\r\n\r\n",
      400, "http1.content_length_and_transfer_encoding");
}

TEST_F(HostileHttp1Test, TransferEncodingBeforeContentLengthGets400AndClose) {
  expectRejected(
      "POST /both HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
      "5\r\nhello\r\n0\r\n\r\n",
      400, "http1.content_length_and_transfer_encoding");
}

TEST_F(HostileHttp1Test, DifferingDuplicateContentLengthGets400) {
  expectRejected(
      "POST /dup HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400,
      "http1.duplicate_content_length");
}

TEST_F(HostileHttp1Test, IdenticalDuplicateContentLengthGets400) {
  // The strict reading (two identical Content-Lengths: 400) is the safe one, and
  // llhttp rejects every duplicate Content-Length without a lenient switch for it.
  expectRejected(
      "POST /dup HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400,
      "http1.duplicate_content_length");
}

TEST_F(HostileHttp1Test, ContentLengthListAndSignGet400) {
  expectRejected("POST /cl HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\nhello", 400,
                 "http1.invalid_content_length");
  expectRejected("POST /cl HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\nhello", 400,
                 "http1.invalid_content_length");
}

TEST_F(HostileHttp1Test, NonHexChunkSizeGets400) {
  expectRejected(
      "POST /chunk HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: "
      "chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
      400, "http1.invalid_chunk_size", UpstreamSees::AtMostCutOff);
}

TEST_F(HostileHttp1Test, OverflowingChunkSizeGets400) {
  expectRejected(
      "POST /chunk HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "1ffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
      400, "http1.invalid_chunk_size", UpstreamSees::AtMostCutOff);
}

TEST_F(HostileHttp1Test, ObsFoldGets400) {
  expectRejected("GET /fold HTTP/1.1\r\nHost: h\r\nX-Folded: a\r\n b\r\n\r\n", 400,
                 "http1.obs_fold");
}

TEST_F(HostileHttp1Test, ObsFoldOnTransferEncodingGets400) {
  expectRejected(
      "POST /fold HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", 400,
      "http1.obs_fold");
}

TEST_F(HostileHttp1Test, BareLfInHeadersGets400) {
  expectRejected("GET /lf HTTP/1.1\r\nHost: h\nX-A: b\r\n\r\n", 400, "http1.bare_lf");
}

TEST_F(HostileHttp1Test, BareLfRequestLineGets400) {
  expectRejected("GET /lf HTTP/1.1\nHost: h\r\n\r\n", 400, "http1.bare_lf");
}

TEST_F(HostileHttp1Test, NulInHeaderValueGets400) {
  expectRejected("GET /nul HTTP/1.1\r\nHost: h\r\nX-A: b\0c\r\n\r\n"s, 400,
                 "http1.invalid_header_value");
}

TEST_F(HostileHttp1Test, ControlCharacterInHeaderValueGets400) {
  expectRejected(
      "GET /ctl HTTP/1.1\r\nHost: h\r\nX-A: b\x01"
      "c\r\n\r\n",
      400, "http1.invalid_header_value");
}

TEST_F(HostileHttp1Test, BareCrInHeaderValueGets400) {
  expectRejected("GET /cr HTTP/1.1\r\nHost: h\r\nX-A: b\rc\r\n\r\n", 400,
                 "http1.codec_error.HPE_LF_EXPECTED");
}

// HAProxy CVE-2023-25725 shape: an empty name. llhttp lets it through; it must not vanish or
// merge into the next header.
TEST_F(HostileHttp1Test, EmptyHeaderNameGets400) {
  expectRejected("GET /empty-name HTTP/1.1\r\nHost: h\r\n: hidden\r\nX-B: c\r\n\r\n", 400,
                 "http1.invalid_header_name");
}

TEST_F(HostileHttp1Test, SpaceInsideHeaderNameGets400) {
  expectRejected("GET /space-name HTTP/1.1\r\nHost: h\r\nX A: b\r\n\r\n", 400,
                 "http1.invalid_header_name");
}

TEST_F(HostileHttp1Test, InvalidTrailerNameGets400) {
  expectRejected(
      "POST /trailer HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "2\r\nok\r\n0\r\nX T: a\r\n\r\n",
      400, "http1.invalid_header_name", UpstreamSees::AtMostCutOff);
}

TEST_F(HostileHttp1Test, TransferEncodingNotEndingInChunkedGets400) {
  expectRejected(
      "POST /te HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400,
      "http1.invalid_transfer_encoding");
}

TEST_F(HostileHttp1Test, XchunkedTransferEncodingGets400) {
  expectRejected("POST /te HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
                 400, "http1.invalid_transfer_encoding");
}

TEST_F(HostileHttp1Test, GzipThenChunkedTransferEncodingGets400) {
  // Ends in chunked, so llhttp frames it, but bulwark does not decode gzip transfer codings.
  expectRejected(
      "POST /te HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400,
      "http1.invalid_transfer_encoding");
}

TEST_F(HostileHttp1Test, DoubleChunkedTransferEncodingGets400) {
  expectRejected(
      "POST /te HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
      "chunked\r\n\r\n"
      "0\r\n\r\n",
      400, "http1.invalid_transfer_encoding");
}

TEST_F(HostileHttp1Test, SpaceBeforeColonGets400) {
  expectRejected("POST /te HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
                 400, "http1.invalid_header_name");
}

TEST_F(HostileHttp1Test, MissingHostOnHttp11Gets400) {
  expectRejected("GET /nohost HTTP/1.1\r\nX-A: b\r\n\r\n", 400, "http1.invalid_host");
}

TEST_F(HostileHttp1Test, TwoHostHeadersGet400) {
  expectRejected("GET /twohosts HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "http1.invalid_host");
}

TEST_F(HostileHttp1Test, Http2VersionOnHttp1ListenerGets505) {
  expectRejected("GET /v2 HTTP/2.0\r\nHost: h\r\n\r\n", 505, "http1.version_not_supported");
}

TEST_F(HostileHttp1Test, Http0VersionGets505) {
  expectRejected("GET /v0 HTTP/0.9\r\nHost: h\r\n\r\n", 505, "http1.version_not_supported");
}

// H10: h2c upgrade smuggling. No 101 tunnel; the upgrade headers and every header the
// Connection header names stay on this hop.
TEST_F(HostileHttp1Test, H2cUpgradeIsNotTunnelledAndHopByHopHeadersAreStripped) {
  Http1Client client(port());
  ASSERT_TRUE(client.sendRaw(
      "GET /upgrade HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n"
      "Connection: Upgrade, HTTP2-Settings, X-Secret\r\nX-Secret: s\r\nX-Kept: k\r\n\r\n"));
  auto r = client.readResponse(deadlineIn(3s));
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(200, r->status);
  ASSERT_TRUE(upstream_->waitForRequests(baseline_ + 1, deadlineIn(2s)));
  auto req = newUpstreamRequests().at(0);
  EXPECT_EQ("/upgrade", req.path);
  for (const char* name : {"upgrade", "http2-settings", "x-secret"}) {
    EXPECT_FALSE(req.header(name)) << name << " reached the upstream";
  }
  std::string connection = req.header("connection").value_or("");
  for (auto& ch : connection) {
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  }
  EXPECT_EQ(std::string::npos, connection.find("upgrade")) << "Connection: " << connection;
  EXPECT_EQ("k", req.header("x-kept").value_or(""));
}

// CL.TE: a front end trusting CL forwards "0\r\n\r\nG" as body,
// a back end trusting TE sees "G..." start the next request. Bulwark must reject the message.
TEST_F(HostileHttp1Test, ClTeSmugglingNeverReachesUpstream) {
  expectRejected(
      "POST /clte HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\n\r\nG"
      "ET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n",
      400, "http1.content_length_and_transfer_encoding");
}

// TE.CL: the chunked body hides a whole second request that a CL-trusting hop would parse.
TEST_F(HostileHttp1Test, TeClSmugglingNeverReachesUpstream) {
  std::string smuggled = "GET /smuggled HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nx=";
  char size[16];
  std::snprintf(size, sizeof(size), "%zx", smuggled.size());
  expectRejected(
      "POST /tecl HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" +
          std::string(size) + "\r\n" + smuggled + "\r\n0\r\n\r\n",
      400, "http1.content_length_and_transfer_encoding");
}

// A valid request followed on the same connection by a smuggling shape: the first is answered,
// the second rejected, and only the first ever reaches the upstream.
TEST_F(HostileHttp1Test, SmugglingAfterAValidPipelinedRequestIsRejected) {
  double before = protocolErrors("http1.content_length_and_transfer_encoding");
  Http1Client client(port());
  ASSERT_TRUE(client.sendRaw(
      "GET /first HTTP/1.1\r\nHost: h\r\n\r\n"
      "POST /second HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"));
  auto first = client.readResponse(deadlineIn(3s));
  ASSERT_TRUE(first) << client.lastError();
  EXPECT_EQ(200, first->status);
  EXPECT_EQ("/first", first->header("x-echo-path").value_or(""));
  auto second = client.readResponse(deadlineIn(3s));
  ASSERT_TRUE(second) << client.lastError();
  EXPECT_EQ(400, second->status);
  EXPECT_TRUE(client.waitForClose(deadlineIn(2s)));
  EXPECT_GE(protocolErrors("http1.content_length_and_transfer_encoding"), before + 1);
  std::string probe = expectStillServing();
  ASSERT_TRUE(upstream_->waitForRequests(baseline_ + 2, deadlineIn(2s)));
  std::vector<std::string> paths;
  for (const auto& req : newUpstreamRequests()) {
    paths.push_back(req.path);
  }
  EXPECT_EQ((std::vector<std::string>{"/first", probe}), paths);
}

// The byte-hygiene checks (bare LF, obs-fold) apply to every request on a connection, including
// one that arrives in the same read as the request before it.
TEST_F(HostileHttp1Test, BareLfInSecondPipelinedRequestGets400) {
  double before = protocolErrors("http1.bare_lf");
  Http1Client client(port());
  ASSERT_TRUE(
      client.sendRaw("GET /first HTTP/1.1\r\nHost: h\r\n\r\n"
                     "GET /second HTTP/1.1\r\nHost: h\nX-A: b\r\n\r\n"));
  auto first = client.readResponse(deadlineIn(3s));
  ASSERT_TRUE(first) << client.lastError();
  EXPECT_EQ(200, first->status);
  auto second = client.readResponse(deadlineIn(3s));
  ASSERT_TRUE(second) << client.lastError();
  EXPECT_EQ(400, second->status);
  EXPECT_TRUE(client.waitForClose(deadlineIn(2s)));
  EXPECT_GE(protocolErrors("http1.bare_lf"), before + 1);
  std::string probe = expectStillServing();
  ASSERT_TRUE(upstream_->waitForRequests(baseline_ + 2, deadlineIn(2s)));
  std::vector<std::string> paths;
  for (const auto& req : newUpstreamRequests()) {
    paths.push_back(req.path);
  }
  EXPECT_EQ((std::vector<std::string>{"/first", probe}), paths);
}

TEST_F(HostileHttp1Test, ObsFoldInSecondPipelinedRequestGets400) {
  Http1Client client(port());
  ASSERT_TRUE(
      client.sendRaw("POST /first HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok"
                     "GET /second HTTP/1.1\r\nHost: h\r\nX-A: b\r\n c\r\n\r\n"));
  auto first = client.readResponse(deadlineIn(3s));
  ASSERT_TRUE(first) << client.lastError();
  EXPECT_EQ(200, first->status);
  auto second = client.readResponse(deadlineIn(3s));
  ASSERT_TRUE(second) << client.lastError();
  EXPECT_EQ(400, second->status);
  EXPECT_TRUE(client.waitForClose(deadlineIn(2s)));
}

// llhttp skips empty lines before a request line; they must not end the hygiene scan early.
TEST_F(HostileHttp1Test, ObsFoldAfterLeadingEmptyLinesGets400) {
  expectRejected("\r\n\r\nGET /lead HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n", 400,
                 "http1.obs_fold");
}

TEST_F(HostileHttp1Test, BareLfEndOfHeadersAfterLeadingEmptyLinesGets400) {
  expectRejected("\r\n\r\nGET /lead HTTP/1.1\r\nHost: h\r\n\n", 400, "http1.bare_lf");
}

// Chunk *data* is opaque: a body byte that happens to be a bare LF (or "\r\n " that looks like a
// fold) is payload, not a header-hygiene violation.
TEST_F(HostileHttp1Test, ChunkedBodyWithLineFeedsPasses) {
  Http1Client client(port());
  ASSERT_TRUE(
      client.sendRaw("POST /chunked-lf HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"));
  // The body in a separate write, so it is usually read after the headers were parsed (the
  // outcome must not depend on how the bytes are split into reads).
  std::string data = "a\nb\r\n c\n";
  char size[16];
  std::snprintf(size, sizeof(size), "%zx", data.size());
  ASSERT_TRUE(client.sendRaw(std::string(size) + "\r\n" + data + "\r\n0\r\n\r\n"));
  auto r = client.readResponse(deadlineIn(3s));
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(200, r->status);
  EXPECT_EQ(data, r->body);
}

TEST_F(HostileHttp1Test, BareLfInChunkedTrailersGets400) {
  expectRejected(
      "POST /trailer HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "2\r\nok\r\n0\r\nX-T: a\nX-U: b\r\n\r\n",
      400, "http1.bare_lf", UpstreamSees::AtMostCutOff);
}

// --- Keep-alive behaviour under attack ---------------------------------------------------------

TEST_F(HostileHttp1Test, PipelinedRequestsAnsweredInOrder) {
  Http1Client client(port());
  auto responses = client.pipeline(
      {http1Get("/p1"), http1Request("POST", "/p2", {}, "body-two"), http1Get("/p3")},
      deadlineIn(3s));
  ASSERT_EQ(3u, responses.size()) << client.lastError();
  const char* paths[] = {"/p1", "/p2", "/p3"};
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(200, responses[i].status);
    EXPECT_EQ(paths[i], responses[i].header("x-echo-path").value_or(""))
        << "response " << i << " out of order";
    EXPECT_TRUE(responses[i].keep_alive);
  }
  EXPECT_EQ("body-two", responses[1].body);
  // The connection is still usable afterwards.
  auto again = client.get("/p4", {}, deadlineIn(3s));
  ASSERT_TRUE(again) << client.lastError();
  EXPECT_EQ("/p4", again->header("x-echo-path").value_or(""));
  ASSERT_TRUE(upstream_->waitForRequests(baseline_ + 4, deadlineIn(2s)));
  std::vector<std::string> seen;
  for (const auto& req : newUpstreamRequests()) {
    seen.push_back(req.path);
  }
  EXPECT_EQ((std::vector<std::string>{"/p1", "/p2", "/p3", "/p4"}), seen);
}

TEST_F(HostileHttp1Test, SlowlorisIsClosedAfterHeaderReadTimeout) {
  double before = protocolErrors("header_read_timeout");
  Http1Client client(port());
  ASSERT_TRUE(client.connect(deadlineIn(2s))) << client.lastError();
  auto start = Clock::now();
  ASSERT_TRUE(client.sendRaw("GET /slow HTTP/1.1\r\nHost: h\r\n"));
  // One header byte every 100 ms, far slower than a client that means well: each wait is bounded
  // by the close we expect, so nothing sleeps past the point bulwark gives up.
  const std::string trickle = "X-Slow: abcdefghijklmnopqrstuvwxyz\r\n";
  bool closed = false;
  for (size_t i = 0; i < 200 && !closed; ++i) {
    if (!client.sendRaw(std::string_view(&trickle[i % trickle.size()], 1), deadlineIn(1s))) {
      closed = true;  // the write failed: bulwark already closed
      break;
    }
    closed = client.waitForClose(deadlineIn(100ms));
    if (Clock::now() - start > kHeaderReadTimeout + 5s) {
      break;
    }
  }
  auto elapsed = Clock::now() - start;
  EXPECT_TRUE(closed) << "slowloris connection still open after "
                      << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()
                      << " ms";
  EXPECT_GE(elapsed, kHeaderReadTimeout - 100ms) << "closed before the header-read timeout";
  EXPECT_LE(elapsed, kHeaderReadTimeout + 3s);  // idleTimeout (30 s) would be far later
  EXPECT_TRUE(waitForMetric(
      bulwark_->adminPort(), kProtocolErrors,
      {{"listener", "public"}, {"reason", "header_read_timeout"}},
      [&](double v) { return v >= before + 1; }, deadlineIn(2s)));
  std::string probe = expectStillServing();
  expectUpstreamSaw(UpstreamSees::Nothing, probe);
}

TEST_F(HostileHttp1Test, SlowlorisOnKeepAliveConnectionIsClosed) {
  // The header-read timeout also covers the second request on a reused connection.
  Http1Client client(port());
  auto first = client.get("/first", {}, deadlineIn(3s));
  ASSERT_TRUE(first) << client.lastError();
  ASSERT_EQ(200, first->status);
  auto start = Clock::now();
  ASSERT_TRUE(client.sendRaw("GET /second HTTP/1.1\r\nHost: h\r\n"));
  bool closed = false;
  for (int i = 0; i < 100 && !closed && Clock::now() - start < kHeaderReadTimeout + 5s; ++i) {
    if (!client.sendRaw("X", deadlineIn(1s))) {
      closed = true;
      break;
    }
    closed = client.waitForClose(deadlineIn(100ms));
  }
  auto elapsed = Clock::now() - start;
  EXPECT_TRUE(closed);
  EXPECT_GE(elapsed, kHeaderReadTimeout - 100ms);
  EXPECT_LE(elapsed, kHeaderReadTimeout + 3s);  // idleTimeout (30 s) would be far later
}

TEST_F(HostileHttp1Test, IdleKeepAliveConnectionOutlivesHeaderReadTimeout) {
  // Between requests a connection is idle (idleTimeout, 30 s here), not a slow header.
  Http1Client client(port());
  auto first = client.get("/first", {}, deadlineIn(3s));
  ASSERT_TRUE(first) << client.lastError();
  // A silent connection opened after it: its header-read timeout fires later than one started
  // for the idle connection would have, so once it is closed, the idle one would be too.
  Http1Client silent(port());
  ASSERT_TRUE(silent.connect(deadlineIn(2s))) << silent.lastError();
  ASSERT_TRUE(silent.waitForClose(deadlineIn(kHeaderReadTimeout + 3s)));
  EXPECT_FALSE(client.peerClosed() || client.waitForClose(deadlineIn(50ms)))
      << "an idle keep-alive connection was closed by the header-read timeout";
  auto connections = [] {
    return metricValue(bulwark_->adminPort(), "bulwark_downstream_connections_total",
                       {{"listener", "public"}})
        .value_or(-1);
  };
  const double before = connections();
  auto second = client.get("/second", {}, deadlineIn(3s));
  ASSERT_TRUE(second) << client.lastError();
  EXPECT_EQ(200, second->status);
  EXPECT_EQ(before, connections()) << "the second request needed a new connection";
}

TEST_F(HostileHttp1Test, SilentConnectionIsClosedAfterHeaderReadTimeout) {
  Http1Client client(port());
  ASSERT_TRUE(client.connect(deadlineIn(2s))) << client.lastError();
  auto start = Clock::now();
  EXPECT_TRUE(client.waitForClose(deadlineIn(kHeaderReadTimeout + 3s)));
  EXPECT_GE(Clock::now() - start, kHeaderReadTimeout - 100ms);
  expectStillServing();
}

TEST_F(HostileHttp1Test, ManyRejectionsLeaveBulwarkServing) {
  // A burst of mixed hostile connections, then normal traffic: nothing leaks into later requests.
  const std::vector<std::string> attacks = {
      "GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: "
      "chunked\r\n\r\n0\r\n\r\n",
      "GET / HTTP/1.1\r\nX: y\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
  };
  for (int round = 0; round < 25; ++round) {
    Http1Client client(port());
    ASSERT_TRUE(client.sendRaw(attacks[static_cast<size_t>(round) % attacks.size()]));
    auto r = client.readResponse(deadlineIn(3s));
    ASSERT_TRUE(r) << client.lastError();
    EXPECT_EQ(400, r->status);
  }
  Http1Client client(port());
  for (int i = 0; i < 5; ++i) {
    auto r = client.get("/after-burst", {}, deadlineIn(3s));
    ASSERT_TRUE(r) << client.lastError();
    EXPECT_EQ(200, r->status);
  }
}

}  // namespace
}  // namespace bulwark::testing
