// HTTP/1.1 server and client codecs through their public interfaces, each on a real
// network::Connection whose peer is the test (a socketpair). Input is fed as socket reads
// deliver it, split at every byte boundary where it matters; output is read from the peer.

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <event2/buffer.h>
#include <gtest/gtest.h>

#include "proxy/event/dispatcher.h"
#include "proxy/http/http1_client_codec.h"
#include "proxy/http/http1_server_codec.h"
#include "tests/mocks/dispatcher_loop.h"
#include "tests/mocks/recording_streams.h"
#include "tests/mocks/socket_pair.h"

namespace bulwark::http {
namespace {

using mocks::RecordingRequestDecoder;
using mocks::RecordingResponseDecoder;

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

/**
 * A server codec on a connection the test talks to, handling dispatch results the way the
 * connection manager does. Thread: test.
 */
class ServerSide : public network::ConnectionCallbacks, public ServerConnectionCallbacks {
public:
  explicit ServerSide(event::Dispatcher& dispatcher, const ServerCodecLimits& limits = {})
      : dispatcher(dispatcher), pair(dispatcher) {
    pair.connection().setCallbacks(this);
    codec = std::make_unique<Http1ServerConnection>(pair.connection(), *this, limits);
  }

  // network::ConnectionCallbacks
  void onData(evbuffer* input) override {
    Status status = codec->dispatch(input);
    if (!status.isOk()) {
      if (!pair.connection().closing()) {
        pair.connection().close(network::Connection::CloseType::FlushWrite);
      }
      return;
    }
    if (codec->wantsClose()) {
      pair.connection().close(network::Connection::CloseType::FlushWrite);
    }
  }
  void onEvent(network::ConnectionEvent event) override {
    if (event == network::ConnectionEvent::RemoteClose ||
        event == network::ConnectionEvent::LocalClose) {
      closed = true;
      codec->onConnectionClosed();
    }
  }

  // ServerConnectionCallbacks
  RequestDecoder& newStream(ResponseEncoder& encoder) override {
    requests.push_back(std::make_unique<RecordingRequestDecoder>(encoder));
    RecordingRequestDecoder& request = *requests.back();
    encoder.stream().setCallbacks(&request);
    if (answer_with_path) {
      request.on_complete = [](RecordingRequestDecoder& r) { r.respond(200, r.headers->path); };
    }
    return request;
  }
  void onProtocolError(std::string_view details) override { protocol_errors.emplace_back(details); }

  /** Runs the loop until the client received `text`. */
  bool waitForOutput(std::string_view text) {
    return mocks::runUntil(dispatcher, [&] { return contains(pair.received(), text); });
  }
  bool waitForClose() {
    return mocks::runUntil(dispatcher, [&] { return pair.peerSawClose(); });
  }

  event::Dispatcher& dispatcher;
  mocks::SocketPair pair;
  std::unique_ptr<Http1ServerConnection> codec;
  std::vector<std::unique_ptr<RecordingRequestDecoder>> requests;
  std::vector<std::string> protocol_errors;
  /** Each request is answered, once complete, with 200 and its path as the body. */
  bool answer_with_path = false;
  bool closed = false;
};

/** One dispatcher for the test's ServerSides. Thread: test. */
class Http1ServerCodecTest : public ::testing::Test {
protected:
  event::Dispatcher dispatcher_;
};

TEST_F(Http1ServerCodecTest, ParsesARequestSplitAtEveryByte) {
  const std::string request =
      "POST /items?x=1 HTTP/1.1\r\nHost: svc\r\nContent-Length: 5\r\nX-Trace:  a b \r\n\r\nhello";
  const size_t header_end = request.find("\r\n\r\n") + 4;
  for (size_t split = 1; split < request.size(); ++split) {
    SCOPED_TRACE("split at " + std::to_string(split));
    ServerSide server(dispatcher_);
    server.pair.feed(request.substr(0, split));
    EXPECT_EQ(server.requests.size(), split >= header_end ? 1u : 0u)
        << "headers delivered before the header section was complete";
    server.pair.feed(request.substr(split));
    ASSERT_EQ(server.requests.size(), 1u);
    const auto& r = *server.requests[0];
    ASSERT_NE(r.headers, nullptr);
    EXPECT_EQ(r.headers->method, "POST");
    EXPECT_EQ(r.headers->path, "/items?x=1");
    EXPECT_EQ(r.headers->authority, "svc");
    EXPECT_EQ(r.headers->headers.get("x-trace"), "a b");
    EXPECT_EQ(r.body, "hello");
    EXPECT_TRUE(r.complete);
    EXPECT_TRUE(server.protocol_errors.empty());
  }
}

// The header scan skips from one '\n' to the next: a bare LF or an obs-fold is found wherever
// the read boundaries fall, and a valid request with empty lines before it, spaces and tabs
// inside values, and a body holding bare LFs is not refused.
TEST_F(Http1ServerCodecTest, SmugglingShapesAreFoundWhereverTheReadSplits) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"GET / HTTP/1.1\r\nHost: svc\r\nX-A: 1\nX-B: 2\r\n\r\n", "http1.bare_lf"},
      {"GET / HTTP/1.1\nHost: svc\r\n\r\n", "http1.bare_lf"},
      {"GET / HTTP/1.1\r\nHost: svc\r\nX-A: 1\r\n folded\r\n\r\n", "http1.obs_fold"},
      {"GET / HTTP/1.1\r\nHost: svc\r\nX-A: 1\r\n\tfolded\r\n\r\n", "http1.obs_fold"},
      {"\r\n\r\nGET / HTTP/1.1\r\nHost: svc\r\nX-A: 1\r\n folded\r\n\r\n", "http1.obs_fold"},
      {"GET / HTTP/1.1\r\nHost: svc\r\nX-A: 1\r\r\n\r\n", ""},  // llhttp's to refuse
      {"\r\nPOST / HTTP/1.1\r\nHost: svc\r\nX-A: a \t b\r\nContent-Length: 4\r\n\r\n\n\n \n",
       "none"},
  };
  for (const auto& [request, error] : cases) {
    for (size_t split = 1; split < request.size(); ++split) {
      SCOPED_TRACE(::testing::PrintToString(request) + " split at " + std::to_string(split));
      ServerSide server(dispatcher_);
      server.pair.feed(request.substr(0, split));
      server.pair.feed(request.substr(split));
      if (error == "none") {
        EXPECT_TRUE(server.protocol_errors.empty());
        ASSERT_EQ(server.requests.size(), 1u);
        EXPECT_EQ(server.requests[0]->body, "\n\n \n");
      } else if (error.empty()) {
        EXPECT_TRUE(server.requests.empty());
      } else {
        EXPECT_EQ(server.protocol_errors, std::vector<std::string>{error});
        EXPECT_TRUE(server.requests.empty());
      }
    }
  }
}

TEST_F(Http1ServerCodecTest, ParsesAChunkedRequestWithTrailersSplitAtEveryByte) {
  const std::string request =
      "POST /up HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 11\r\n\r\n";
  for (size_t split = 1; split < request.size(); ++split) {
    SCOPED_TRACE("split at " + std::to_string(split));
    ServerSide server(dispatcher_);
    server.pair.feed(request.substr(0, split));
    server.pair.feed(request.substr(split));
    ASSERT_EQ(server.requests.size(), 1u);
    const auto& r = *server.requests[0];
    EXPECT_EQ(r.body, "hello world");
    ASSERT_TRUE(r.trailers.has_value());
    EXPECT_EQ(r.trailers->get("x-sum"), "11");
    EXPECT_TRUE(r.complete);
    EXPECT_FALSE(r.headers->headers.has("transfer-encoding")) << "hop-by-hop header forwarded";
    EXPECT_TRUE(server.protocol_errors.empty());
  }
}

TEST_F(Http1ServerCodecTest, ParsesAChunkedRequestFedOneByteAtATime) {
  const std::string request =
      "PUT /a HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\na\r\n0123456789\r\n0\r\n\r\n";
  ServerSide server(dispatcher_);
  for (char c : request) {
    server.pair.feed(std::string_view(&c, 1));
  }
  ASSERT_EQ(server.requests.size(), 1u);
  EXPECT_EQ(server.requests[0]->body, "abc0123456789");
  EXPECT_TRUE(server.requests[0]->complete);
  EXPECT_FALSE(server.requests[0]->trailers.has_value());
}

TEST_F(Http1ServerCodecTest, PipelinedRequestsAreServedOneAtATimeInOrder) {
  ServerSide server(dispatcher_);
  server.pair.feed(
      "GET /one HTTP/1.1\r\nHost: svc\r\n\r\n"
      "GET /two HTTP/1.1\r\nHost: svc\r\n\r\n"
      "GET /three HTTP/1.1\r\nHost: svc\r\n\r\n");
  ASSERT_EQ(server.requests.size(), 1u) << "a pipelined request started before the first ended";
  server.requests[0]->respond(200, "first");
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return server.requests.size() == 2; }));
  EXPECT_EQ(server.requests[1]->headers->path, "/two");
  server.requests[1]->respond(200, "second");
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return server.requests.size() == 3; }));
  server.requests[2]->respond(200, "third");
  ASSERT_TRUE(server.waitForOutput("third"));

  const std::string& out = server.pair.received();
  EXPECT_LT(out.find("first"), out.find("second"));
  EXPECT_LT(out.find("second"), out.find("third"));
  EXPECT_FALSE(server.closed);
}

TEST_F(Http1ServerCodecTest, PipelinedRequestWaitsForAResponseThatStartedBeforeItsRequestEnded) {
  // The upstream answers before the request body is through and streams on after it: a
  // pipelined request behind it must not start until that response ends.
  ServerSide server(dispatcher_);
  server.pair.feed("POST /first HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\n");
  ASSERT_EQ(server.requests.size(), 1u);
  auto& first = *server.requests[0];
  ResponseHeaders head;
  head.status = 200;
  first.encoder.encodeHeaders(head, false);
  server.pair.feed("abcdGET /second HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_TRUE(first.complete);
  EXPECT_EQ(server.requests.size(), 1u) << "second request parsed while the first response runs";
  evbuffer* data = evbuffer_new();
  evbuffer_add(data, "x", 1);
  first.encoder.encodeData(data, true);
  evbuffer_free(data);
  ASSERT_TRUE(server.waitForOutput("1\r\nx\r\n0\r\n\r\n"));
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return server.requests.size() == 2; }));
  EXPECT_EQ(server.requests[1]->headers->path, "/second");
  server.requests[1]->respond(200, "second");
  ASSERT_TRUE(server.waitForOutput("second"));
  const std::string out = server.pair.received();
  EXPECT_LT(out.find("0\r\n\r\n"), out.find("second"));
  EXPECT_TRUE(server.protocol_errors.empty());
}

TEST_F(Http1ServerCodecTest, PipelinedRequestsSplitAtEveryByteAreAllAnswered) {
  const std::string requests =
      "GET /a HTTP/1.1\r\nHost: svc\r\n\r\nPOST /b HTTP/1.1\r\nHost: svc\r\nContent-Length: 2\r\n"
      "\r\nxyGET /c HTTP/1.1\r\nHost: svc\r\n\r\n";
  for (size_t split = 1; split < requests.size(); ++split) {
    SCOPED_TRACE("split at " + std::to_string(split));
    ServerSide server(dispatcher_);
    server.answer_with_path = true;
    server.pair.feed(requests.substr(0, split));
    server.pair.feed(requests.substr(split));
    ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return server.requests.size() == 3; }));
    ASSERT_TRUE(server.waitForOutput("/c"));
    EXPECT_EQ(server.requests[1]->body, "xy");
    const std::string& out = server.pair.received();
    EXPECT_LT(out.find("/a"), out.find("/b"));
    EXPECT_LT(out.find("/b"), out.find("/c"));
  }
}

TEST_F(Http1ServerCodecTest, ResponseWithoutALengthIsChunked) {
  ServerSide server(dispatcher_);
  server.pair.feed("GET / HTTP/1.1\r\nHost: svc\r\n\r\n");
  ASSERT_EQ(server.requests.size(), 1u);
  auto& encoder = server.requests[0]->encoder;
  ResponseHeaders headers;
  headers.status = 200;
  encoder.encodeHeaders(headers, false);
  for (std::string_view part : {"hello", " world"}) {
    evbuffer* data = evbuffer_new();
    evbuffer_add(data, part.data(), part.size());
    encoder.encodeData(data, part == " world");
    evbuffer_free(data);
  }
  const std::string expected =
      "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
  ASSERT_TRUE(server.waitForOutput("0\r\n\r\n"));
  EXPECT_EQ(server.pair.received(), expected);
}

TEST_F(Http1ServerCodecTest, ResponseTrailersEndTheChunkedBody) {
  ServerSide server(dispatcher_);
  server.pair.feed("GET / HTTP/1.1\r\nHost: svc\r\n\r\n");
  auto& encoder = server.requests[0]->encoder;
  ResponseHeaders headers;
  headers.status = 200;
  encoder.encodeHeaders(headers, false);
  evbuffer* data = evbuffer_new();
  evbuffer_add(data, "abc", 3);
  encoder.encodeData(data, false);
  evbuffer_free(data);
  HeaderMap trailers;
  trailers.add("grpc-status", "0");
  encoder.encodeTrailers(trailers);
  ASSERT_TRUE(server.waitForOutput("grpc-status: 0\r\n\r\n"));
  EXPECT_TRUE(contains(server.pair.received(), "3\r\nabc\r\n0\r\ngrpc-status: 0\r\n\r\n"));
}

TEST_F(Http1ServerCodecTest, HeaderSectionOverTheLimitIs431AndCloses) {
  ServerCodecLimits limits;
  limits.max_request_headers_bytes = 64;
  ServerSide server(dispatcher_, limits);
  server.pair.feed("GET / HTTP/1.1\r\nHost: svc\r\nX-Big: " + std::string(80, 'a') + "\r\n\r\n");
  ASSERT_TRUE(server.waitForClose());
  EXPECT_TRUE(server.pair.received().starts_with("HTTP/1.1 431 "));
  EXPECT_EQ(server.protocol_errors, std::vector<std::string>{"http1.headers_too_large"});
  EXPECT_TRUE(server.requests.empty());
}

TEST_F(Http1ServerCodecTest, HeaderSectionOverTheLimitIs431WhenFedByteByByte) {
  ServerCodecLimits limits;
  limits.max_request_headers_bytes = 64;
  ServerSide server(dispatcher_, limits);
  const std::string request = "GET / HTTP/1.1\r\nHost: svc\r\nX-Big: " + std::string(80, 'a');
  for (char c : request) {
    if (server.closed) {
      break;
    }
    server.pair.feed(std::string_view(&c, 1));
  }
  ASSERT_TRUE(server.waitForClose());
  EXPECT_TRUE(server.pair.received().starts_with("HTTP/1.1 431 "));
}

TEST_F(Http1ServerCodecTest, TooManyHeadersAre431) {
  ServerCodecLimits limits;
  limits.max_headers_count = 2;
  ServerSide server(dispatcher_, limits);
  server.pair.feed("GET / HTTP/1.1\r\nHost: svc\r\nA: 1\r\nB: 2\r\n\r\n");
  ASSERT_TRUE(server.waitForClose());
  EXPECT_TRUE(server.pair.received().starts_with("HTTP/1.1 431 "));
  EXPECT_EQ(server.protocol_errors, std::vector<std::string>{"http1.too_many_headers"});
}

TEST_F(Http1ServerCodecTest, DeclaredBodyOverTheLimitIs413BeforeAnyBody) {
  ServerCodecLimits limits;
  limits.max_request_body_bytes = 4;
  ServerSide server(dispatcher_, limits);
  server.pair.feed("POST / HTTP/1.1\r\nHost: svc\r\nContent-Length: 5\r\n\r\n");
  ASSERT_TRUE(server.waitForClose());
  EXPECT_TRUE(server.pair.received().starts_with("HTTP/1.1 413 "));
  EXPECT_TRUE(server.requests.empty());
}

TEST_F(Http1ServerCodecTest, ChunkedBodyOverTheLimitIs413AndResetsTheStream) {
  ServerCodecLimits limits;
  limits.max_request_body_bytes = 4;
  ServerSide server(dispatcher_, limits);
  server.pair.feed(
      "POST / HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
  ASSERT_EQ(server.requests.size(), 1u);
  server.pair.feed("3\r\ndef\r\n");
  ASSERT_TRUE(server.waitForClose());
  EXPECT_TRUE(server.pair.received().starts_with("HTTP/1.1 413 "));
  EXPECT_EQ(server.requests[0]->reset, StreamResetReason::ProtocolError);
  EXPECT_FALSE(contains(server.requests[0]->body, "d")) << "bytes over the limit were delivered";
}

TEST_F(Http1ServerCodecTest, KeepAliveServesTheNextRequestOnTheSameConnection) {
  ServerSide server(dispatcher_);
  server.answer_with_path = true;
  server.pair.feed("GET /first HTTP/1.1\r\nHost: svc\r\n\r\n");
  ASSERT_TRUE(server.waitForOutput("/first"));
  EXPECT_FALSE(contains(server.pair.received(), "connection: close"));
  server.pair.feed("GET /second HTTP/1.1\r\nHost: svc\r\n\r\n");
  ASSERT_TRUE(server.waitForOutput("/second"));
  EXPECT_EQ(server.requests.size(), 2u);
  EXPECT_FALSE(server.closed);
  EXPECT_FALSE(server.pair.peerSawClose());
}

TEST_F(Http1ServerCodecTest, ConnectionCloseRequestClosesAfterTheResponse) {
  ServerSide server(dispatcher_);
  server.answer_with_path = true;
  server.pair.feed("GET /bye HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(server.waitForClose());
  EXPECT_TRUE(contains(server.pair.received(), "connection: close\r\n"));
  EXPECT_TRUE(server.pair.received().ends_with("/bye"));
}

TEST_F(Http1ServerCodecTest, Http10ClosesUnlessAskedToKeepAlive) {
  {
    ServerSide server(dispatcher_);
    server.answer_with_path = true;
    server.pair.feed("GET /old HTTP/1.0\r\n\r\n");
    ASSERT_TRUE(server.waitForClose());
    EXPECT_TRUE(server.pair.received().ends_with("/old"));
  }
  ServerSide server(dispatcher_);
  server.answer_with_path = true;
  server.pair.feed("GET /kept HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  ASSERT_TRUE(server.waitForOutput("/kept"));
  EXPECT_TRUE(contains(server.pair.received(), "connection: keep-alive\r\n"));
  server.pair.feed("GET /again HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  ASSERT_TRUE(server.waitForOutput("/again"));
  EXPECT_FALSE(server.closed);
}

TEST_F(Http1ServerCodecTest, ShutdownNoticeClosesAfterTheCurrentResponse) {
  ServerSide server(dispatcher_);
  server.pair.feed("GET / HTTP/1.1\r\nHost: svc\r\n\r\n");
  server.codec->shutdownNotice();
  server.requests[0]->respond(200, "last");
  ASSERT_TRUE(server.waitForClose());
  EXPECT_TRUE(contains(server.pair.received(), "connection: close\r\n"));
  EXPECT_TRUE(server.pair.received().ends_with("last"));
}

TEST_F(Http1ServerCodecTest, UpgradeRequestStaysOpenAndLaterBytesAreItsBody) {
  ServerSide server(dispatcher_);
  server.pair.feed(
      "GET /chat HTTP/1.1\r\nHost: svc\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Version: 13\r\n\r\nframe-1");
  ASSERT_EQ(server.requests.size(), 1u);
  auto& request = *server.requests[0];
  ASSERT_NE(request.headers, nullptr);
  EXPECT_EQ(request.headers->upgrade, "websocket");
  EXPECT_FALSE(request.headers->headers.has("upgrade"));  // hop-by-hop: the upstream codec
  EXPECT_TRUE(request.headers->headers.has("sec-websocket-version"));
  EXPECT_FALSE(request.complete);
  EXPECT_EQ(request.body, "frame-1");
  // Not parsed as HTTP: a request line inside the tunnel is just bytes.
  server.pair.feed("GET / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(request.body, "frame-1GET / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(server.requests.size(), 1u);
  EXPECT_TRUE(server.protocol_errors.empty());
}

TEST_F(Http1ServerCodecTest, SwitchingProtocolsIsWrittenUnframedThenTheTunnelEndsTheConnection) {
  ServerSide server(dispatcher_);
  server.pair.feed(
      "GET /chat HTTP/1.1\r\nHost: svc\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
  ASSERT_EQ(server.requests.size(), 1u);
  ResponseHeaders switching;
  switching.status = 101;
  switching.headers.add("upgrade", "websocket");
  switching.headers.add("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  server.requests[0]->encoder.encodeHeaders(switching, false);
  evbuffer* data = evbuffer_new();
  evbuffer_add(data, "\x81\x02hi", 4);
  server.requests[0]->encoder.encodeData(data, false);
  ASSERT_TRUE(server.waitForOutput("hi"));
  const std::string out = server.pair.received();
  EXPECT_EQ(out,
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n"
            "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nconnection: upgrade\r\n\r\n"
            "\x81\x02hi");
  server.requests[0]->encoder.encodeData(data, true);
  evbuffer_free(data);
  EXPECT_TRUE(server.waitForClose());
}

TEST_F(Http1ServerCodecTest, ChunkedUpgradeRequestIsRefused) {
  ServerSide server(dispatcher_);
  server.pair.feed(
      "POST /x HTTP/1.1\r\nHost: svc\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
  ASSERT_TRUE(server.waitForOutput("\r\n\r\n"));
  EXPECT_TRUE(contains(server.pair.received(), "HTTP/1.1 400"));
  EXPECT_EQ(server.protocol_errors, std::vector<std::string>{"http1.upgrade_with_chunked_body"});
  EXPECT_TRUE(server.requests.empty());
}

TEST_F(Http1ServerCodecTest, ClientGoneMidRequestResetsTheStream) {
  ServerSide server(dispatcher_);
  server.pair.feed("POST / HTTP/1.1\r\nHost: svc\r\nContent-Length: 10\r\n\r\nabc");
  ASSERT_EQ(server.requests.size(), 1u);
  server.pair.closePeer();
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return server.closed; }));
  EXPECT_EQ(server.requests[0]->reset, StreamResetReason::ConnectionTermination);
}

// ---------------------------------------------------------------------------------------------
// Client side.

/** A client codec on a connection the test answers as the upstream. Thread: test. */
class ClientSide : public network::ConnectionCallbacks, public ClientConnectionCallbacks {
public:
  explicit ClientSide(event::Dispatcher& dispatcher) : dispatcher(dispatcher), pair(dispatcher) {
    pair.connection().setCallbacks(this);
    codec = std::make_unique<Http1ClientConnection>(pair.connection(), *this);
  }

  // network::ConnectionCallbacks
  void onData(evbuffer* input) override {
    Status status = codec->dispatch(input);
    if (!status.isOk()) {
      dispatch_errors.push_back(status.message());
    }
  }
  void onEvent(network::ConnectionEvent event) override {
    if (event == network::ConnectionEvent::RemoteClose ||
        event == network::ConnectionEvent::LocalClose) {
      closed = true;
      codec->onConnectionClosed(false);
    }
  }
  // ClientConnectionCallbacks
  void onGoAway() override { ++go_aways; }
  void onStreamClosed() override { ++streams_closed; }

  /** Starts a stream and sends `method /p` with `body` (none: headers end the request). */
  RecordingResponseDecoder& send(std::string method, std::optional<std::string> body = {}) {
    responses.push_back(std::make_unique<RecordingResponseDecoder>());
    RecordingResponseDecoder& response = *responses.back();
    RequestEncoder& encoder = codec->newStream(response);
    encoder.stream().setCallbacks(&response);
    RequestHeaders headers;
    headers.method = std::move(method);
    headers.path = "/p";
    headers.authority = "svc";
    if (body) {
      headers.headers.add("content-length", std::to_string(body->size()));
    }
    encoder.encodeHeaders(headers, !body);
    if (body) {
      evbuffer* data = evbuffer_new();
      evbuffer_add(data, body->data(), body->size());
      encoder.encodeData(data, true);
      evbuffer_free(data);
    }
    return response;
  }

  event::Dispatcher& dispatcher;
  mocks::SocketPair pair;
  std::unique_ptr<Http1ClientConnection> codec;
  std::vector<std::unique_ptr<RecordingResponseDecoder>> responses;
  std::vector<std::string> dispatch_errors;
  int go_aways = 0;
  int streams_closed = 0;
  bool closed = false;
};

/** One dispatcher for the test's ClientSides. Thread: test. */
class Http1ClientCodecTest : public ::testing::Test {
protected:
  event::Dispatcher dispatcher_;
};

TEST_F(Http1ClientCodecTest, ParsesAResponseSplitAtEveryByte) {
  const std::string response = "HTTP/1.1 201 Created\r\nContent-Length: 5\r\nX-A:  1 \r\n\r\nhello";
  const size_t header_end = response.find("\r\n\r\n") + 4;
  for (size_t split = 1; split < response.size(); ++split) {
    SCOPED_TRACE("split at " + std::to_string(split));
    ClientSide client(dispatcher_);
    auto& r = client.send("GET");
    client.pair.feed(response.substr(0, split));
    EXPECT_EQ(r.headers != nullptr, split >= header_end);
    client.pair.feed(response.substr(split));
    ASSERT_NE(r.headers, nullptr);
    EXPECT_EQ(r.headers->status, 201u);
    EXPECT_EQ(r.headers->headers.get("x-a"), "1");
    EXPECT_EQ(r.body, "hello");
    EXPECT_TRUE(r.complete);
    EXPECT_EQ(client.streams_closed, 1);
    EXPECT_TRUE(client.codec->canCreateStream()) << "a complete keep-alive response";
    EXPECT_TRUE(client.dispatch_errors.empty());
  }
}

TEST_F(Http1ClientCodecTest, ParsesAChunkedResponseWithTrailersSplitAtEveryByte) {
  const std::string response =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "4\r\nwiki\r\n5\r\npedia\r\n0\r\nGrpc-Status: 0\r\n\r\n";
  for (size_t split = 1; split < response.size(); ++split) {
    SCOPED_TRACE("split at " + std::to_string(split));
    ClientSide client(dispatcher_);
    auto& r = client.send("GET");
    client.pair.feed(response.substr(0, split));
    client.pair.feed(response.substr(split));
    EXPECT_EQ(r.body, "wikipedia");
    ASSERT_TRUE(r.trailers.has_value());
    EXPECT_EQ(r.trailers->get("grpc-status"), "0");
    EXPECT_TRUE(r.complete);
    EXPECT_FALSE(r.headers->headers.has("transfer-encoding"));
    EXPECT_EQ(client.streams_closed, 1);
  }
}

TEST_F(Http1ClientCodecTest, RequestBodyOfUnknownLengthIsChunkedWithItsTrailers) {
  ClientSide client(dispatcher_);
  RecordingResponseDecoder response;
  RequestEncoder& encoder = client.codec->newStream(response);
  RequestHeaders headers;
  headers.method = "POST";
  headers.path = "/up";
  headers.authority = "svc";
  encoder.encodeHeaders(headers, false);
  evbuffer* data = evbuffer_new();
  evbuffer_add(data, "abc", 3);
  encoder.encodeData(data, false);
  evbuffer_free(data);
  HeaderMap trailers;
  trailers.add("x-sum", "3");
  encoder.encodeTrailers(trailers);

  const std::string expected =
      "POST /up HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n0\r\nx-sum: 3\r\n\r\n";
  ASSERT_TRUE(mocks::runUntil(dispatcher_,
                              [&] { return client.pair.received().size() >= expected.size(); }));
  EXPECT_EQ(client.pair.received(), expected);
}

TEST_F(Http1ClientCodecTest, RequestWithAContentLengthIsSentAsIs) {
  ClientSide client(dispatcher_);
  client.send("PUT", "hello");
  const std::string expected = "PUT /p HTTP/1.1\r\ncontent-length: 5\r\nhost: svc\r\n\r\nhello";
  ASSERT_TRUE(mocks::runUntil(dispatcher_,
                              [&] { return client.pair.received().size() >= expected.size(); }));
  EXPECT_EQ(client.pair.received(), expected);
}

TEST_F(Http1ClientCodecTest, KeepAliveCarriesTheNextRequest) {
  ClientSide client(dispatcher_);
  auto& first = client.send("GET");
  client.pair.feed("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na");
  ASSERT_TRUE(first.complete);
  ASSERT_TRUE(client.codec->canCreateStream());
  auto& second = client.send("GET");
  client.pair.feed("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb");
  EXPECT_EQ(second.body, "b");
  EXPECT_EQ(client.codec->completedStreams(), 2u);
}

TEST_F(Http1ClientCodecTest, ConnectionCloseResponseEndsReuse) {
  ClientSide client(dispatcher_);
  auto& r = client.send("GET");
  client.pair.feed("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\na");
  EXPECT_TRUE(r.complete);
  EXPECT_FALSE(client.codec->canCreateStream());
  EXPECT_FALSE(client.codec->reusable());
}

TEST_F(Http1ClientCodecTest, CloseDelimitedBodyEndsAtEndOfStream) {
  ClientSide client(dispatcher_);
  auto& r = client.send("GET");
  client.pair.peerWrite("HTTP/1.1 200 OK\r\n\r\nuntil the end");
  client.pair.peerShutdownWrite();
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return r.complete || r.reset.has_value(); }));
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.body, "until the end");
  EXPECT_FALSE(r.reset.has_value());
}

TEST_F(Http1ClientCodecTest, CloseMidResponseResetsTheStream) {
  ClientSide client(dispatcher_);
  auto& r = client.send("GET");
  ASSERT_TRUE(
      mocks::runUntil(dispatcher_, [&] { return contains(client.pair.received(), "\r\n\r\n"); }));
  client.pair.peerWrite("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return r.headers != nullptr; }));
  client.pair.closePeer();
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return r.reset.has_value(); }));
  EXPECT_EQ(r.reset, StreamResetReason::ConnectionTermination);
  EXPECT_EQ(r.reset_detail, "upstream closed mid-response");
  EXPECT_EQ(client.streams_closed, 1);
}

TEST_F(Http1ClientCodecTest, CloseBeforeAnyResponseSaysSo) {
  ClientSide client(dispatcher_);
  auto& r = client.send("GET");
  client.pair.closePeer();
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return r.reset.has_value(); }));
  EXPECT_EQ(r.reset, StreamResetReason::ConnectionTermination);
  EXPECT_EQ(r.reset_detail, "upstream closed before response");
}

TEST_F(Http1ClientCodecTest, HeadResponseEndsAtItsHeaders) {
  ClientSide client(dispatcher_);
  auto& r = client.send("HEAD");
  client.pair.feed("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
  ASSERT_NE(r.headers, nullptr);
  EXPECT_TRUE(r.complete);
  EXPECT_TRUE(client.codec->canCreateStream());
}

TEST_F(Http1ClientCodecTest, NoContentAndNotModifiedEndAtTheirHeadersWhateverTheirFraming) {
  // RFC 9112 §6.3: neither has a body, whatever Content-Length or Transfer-Encoding say. Waiting
  // for one would hang the connection and read the next response as its body.
  ClientSide client(dispatcher_);
  auto& not_modified = client.send("GET");
  client.pair.feed("HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n");
  ASSERT_NE(not_modified.headers, nullptr);
  EXPECT_TRUE(not_modified.complete);
  ASSERT_TRUE(client.codec->canCreateStream());
  auto& no_content = client.send("GET");
  client.pair.feed("HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n");
  ASSERT_NE(no_content.headers, nullptr);
  EXPECT_TRUE(no_content.complete);
  ASSERT_TRUE(client.codec->canCreateStream());
  auto& ok = client.send("GET");
  client.pair.feed("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb");
  EXPECT_EQ(ok.body, "b");
  EXPECT_TRUE(ok.complete);
  EXPECT_EQ(client.codec->completedStreams(), 3u);
  EXPECT_FALSE(not_modified.reset.has_value());
  EXPECT_FALSE(no_content.reset.has_value());
}

TEST_F(Http1ClientCodecTest, StatusOutside100To599IsAProtocolError) {
  for (const char* status : {"000", "099", "600", "999"}) {
    ClientSide client(dispatcher_);
    auto& r = client.send("GET");
    client.pair.feed(std::string("HTTP/1.1 ") + status + " X\r\nContent-Length: 0\r\n\r\n");
    EXPECT_EQ(r.headers, nullptr) << status;
    EXPECT_EQ(r.reset, StreamResetReason::ProtocolError) << status;
    EXPECT_FALSE(client.codec->canCreateStream()) << status;
  }
}

TEST_F(Http1ClientCodecTest, InvalidResponseHeaderNamesAreAProtocolError) {
  // llhttp lets "Name : value" through in responses. Passed on, a client could take
  // "Content-Length : 2" as the length while bulwark framed the body by close or chunks.
  for (const char* response : {
           "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok",
           // An empty name: its value would be glued onto the next field's ("10").
           "HTTP/1.1 200 OK\r\n: 1\r\nContent-Length: 0\r\n\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nBad Trailer: x\r\n\r\n",
       }) {
    ClientSide client(dispatcher_);
    auto& r = client.send("GET");
    client.pair.feed(response);
    EXPECT_EQ(r.reset, StreamResetReason::ProtocolError) << response;
    EXPECT_FALSE(r.complete) << response;
    EXPECT_FALSE(client.codec->canCreateStream()) << response;
  }
}

TEST_F(Http1ClientCodecTest, ContinueIsInformationalThenTheResponseFollows) {
  ClientSide client(dispatcher_);
  auto& r = client.send("POST", "x");
  client.pair.feed("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(r.informational, std::vector<uint32_t>{100});
  ASSERT_NE(r.headers, nullptr);
  EXPECT_EQ(r.headers->status, 200u);
  EXPECT_TRUE(r.complete);
}

TEST_F(Http1ClientCodecTest, InformationalResponsesHaveNoBodyWhateverTheirFraming) {
  ClientSide client(dispatcher_);
  auto& r = client.send("POST", "x");
  client.pair.feed(
      "HTTP/1.1 100 Continue\r\nTransfer-Encoding: gzip\r\n\r\n"
      "HTTP/1.1 103 Early Hints\r\nContent-Length: 4\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  EXPECT_EQ(r.informational, (std::vector<uint32_t>{100, 103}));
  ASSERT_NE(r.headers, nullptr);
  EXPECT_EQ(r.headers->status, 200u);
  EXPECT_EQ(r.body, "ok");
  EXPECT_TRUE(r.complete);
  EXPECT_FALSE(r.reset.has_value());
}

TEST_F(Http1ClientCodecTest, MalformedResponseResetsWithAProtocolError) {
  ClientSide client(dispatcher_);
  auto& r = client.send("GET");
  client.pair.feed("HTTP/1.1 2x0 OK\r\n\r\n");
  EXPECT_EQ(r.reset, StreamResetReason::ProtocolError);
  EXPECT_FALSE(client.dispatch_errors.empty());
  EXPECT_FALSE(client.codec->canCreateStream());
}

TEST_F(Http1ClientCodecTest, BytesWithNoRequestOutstandingAreRefused) {
  ClientSide client(dispatcher_);
  client.pair.feed("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(client.dispatch_errors, std::vector<std::string>{"unexpected data from upstream"});
  EXPECT_FALSE(client.codec->canCreateStream());
}

}  // namespace
}  // namespace bulwark::http

namespace bulwark::http {
namespace {

RequestEncoder& sendUpgrade(ClientSide& client, RecordingResponseDecoder& response) {
  RequestEncoder& encoder = client.codec->newStream(response);
  encoder.stream().setCallbacks(&response);
  RequestHeaders headers;
  headers.method = "GET";
  headers.path = "/chat";
  headers.authority = "svc";
  headers.upgrade = "websocket";
  headers.headers.add("sec-websocket-version", "13");
  encoder.encodeHeaders(headers, false);
  return encoder;
}

TEST_F(Http1ClientCodecTest, UpgradeRequestAsksToSwitchAndA101StartsTheTunnel) {
  ClientSide client(dispatcher_);
  RecordingResponseDecoder response;
  RequestEncoder& encoder = sendUpgrade(client, response);
  const std::string head =
      "GET /chat HTTP/1.1\r\nsec-websocket-version: 13\r\nhost: svc\r\n"
      "connection: upgrade\r\nupgrade: websocket\r\n\r\n";
  ASSERT_TRUE(
      mocks::runUntil(dispatcher_, [&] { return client.pair.received().size() >= head.size(); }));
  EXPECT_EQ(client.pair.received(), head);

  client.pair.feed(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
      "server-bytes");
  ASSERT_NE(response.headers, nullptr);
  EXPECT_EQ(response.headers->status, 101u);
  EXPECT_EQ(response.headers->headers.get("upgrade").value_or(""), "websocket");
  EXPECT_FALSE(response.headers->headers.has("connection"));
  EXPECT_EQ(response.body, "server-bytes");
  EXPECT_FALSE(response.complete);

  // Client bytes go up unframed (no chunk sizes).
  evbuffer* data = evbuffer_new();
  evbuffer_add(data, "client-bytes", 12);
  encoder.encodeData(data, false);
  evbuffer_free(data);
  ASSERT_TRUE(mocks::runUntil(dispatcher_,
                              [&] { return contains(client.pair.received(), "client-bytes"); }));
  EXPECT_EQ(client.pair.received(), head + "client-bytes");

  // The upstream closing its side ends the response; the connection is never reused.
  client.pair.closePeer();
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return response.complete; }));
  EXPECT_FALSE(response.reset.has_value());
  EXPECT_FALSE(client.codec->canCreateStream());
}

TEST_F(Http1ClientCodecTest, RefusedUpgradeIsAnOrdinaryResponseAndEndsReuse) {
  ClientSide client(dispatcher_);
  RecordingResponseDecoder response;
  sendUpgrade(client, response);
  client.pair.feed("HTTP/1.1 426 Upgrade Required\r\nContent-Length: 2\r\n\r\nno");
  EXPECT_TRUE(response.complete);
  EXPECT_EQ(response.body, "no");
  EXPECT_EQ(client.go_aways, 1);
  EXPECT_FALSE(client.codec->canCreateStream());
}

TEST_F(Http1ClientCodecTest, SwitchingProtocolsNobodyAskedForIsAProtocolError) {
  ClientSide client(dispatcher_);
  auto& r = client.send("GET");
  client.pair.feed(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
      "Connection: Upgrade\r\n\r\n");
  ASSERT_TRUE(r.reset.has_value());
  EXPECT_EQ(r.reset, StreamResetReason::ProtocolError);
  EXPECT_EQ(r.headers, nullptr);
}

}  // namespace
}  // namespace bulwark::http
