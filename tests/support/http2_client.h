#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/grpc_codec.h"
#include "tests/support/headers.h"
#include "tests/support/wait.h"

struct nghttp2_session;

namespace bulwark::testing {

/** One HTTP/2 request. Thread: value type. */
struct Http2Request {
  std::string method = "GET";
  std::string path = "/";
  /** Empty = "host:port" of the client. */
  std::string authority;
  std::string scheme = "http";
  /** Regular headers (names are lower-cased when sent). */
  Headers headers;
  std::string body;
  /** Stream this many bodyPattern() bytes instead of `body` (flow-controlled, never buffered). */
  std::optional<uint64_t> generated_body_bytes;
  /** Trailing HEADERS after the body. */
  Headers trailers;
  /** Count response body bytes without storing them. */
  bool discard_body = false;

  Http2Request& withHeader(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
    return *this;
  }
};

/** GET path with extra headers. */
Http2Request http2Get(std::string path, Headers headers = {});
/** method path with a body. */
Http2Request http2Request(std::string method, std::string path, Headers headers = {},
                          std::string body = {});

/** What happened on one stream. Thread: value type. */
struct Http2Response {
  int32_t stream_id = 0;
  /** Final status (1xx responses are skipped). 0 until headers arrived. */
  int status = 0;
  Headers headers;
  std::string body;
  uint64_t body_bytes = 0;
  bool body_matches_pattern = true;
  Headers trailers;
  /** Final response headers arrived. */
  bool headers_received = false;
  /** END_STREAM arrived: the response is whole. */
  bool complete = false;
  /** The peer sent RST_STREAM; `error_code` says why. */
  bool reset_by_peer = false;
  /** The stream is closed (complete, reset either way, refused by GOAWAY, connection lost). */
  bool closed = false;
  /** nghttp2's close code (0 = NO_ERROR; 7 = REFUSED_STREAM also when GOAWAY excluded it). */
  uint32_t error_code = 0;
  Clock::time_point headers_time{};
  Clock::time_point close_time{};

  std::optional<std::string> header(std::string_view name) const {
    return findHeader(headers, name);
  }
  std::optional<std::string> trailer(std::string_view name) const {
    return findHeader(trailers, name);
  }
};

/** Outcome of a gRPC call made by Http2Client::grpcUnary(). Thread: value type. */
struct GrpcResponse {
  Http2Response http;
  /** Decoded response messages (empty when the body was not whole frames; see malformed). */
  std::vector<std::string> messages;
  bool malformed = false;
  /** grpc-status from trailers, or from the headers of a Trailers-Only response. */
  std::optional<int> grpc_status_code;
  /** Percent-decoded grpc-message. */
  std::string grpc_message;
  /** The status came in the only HEADERS frame (no DATA, no trailers). */
  bool trailers_only = false;

  /** grpc_status_code as the enum; Unknown when absent (what a gRPC client would report). */
  GrpcStatus grpcStatus() const {
    return grpc_status_code ? static_cast<GrpcStatus>(*grpc_status_code) : GrpcStatus::Unknown;
  }
  /** First message, or "" when none. */
  std::string message() const { return messages.empty() ? std::string() : messages.front(); }
};

/** Client-side HTTP/2 settings. Thread: value type. */
struct Http2ClientOptions {
  /** SETTINGS_INITIAL_WINDOW_SIZE we advertise (per-stream receive window). */
  uint32_t initial_window_size = 1 << 20;
  /** Connection receive window. */
  uint32_t connection_window_size = 1 << 24;
  /** SO_RCVBUF before connecting (0 = system default). */
  int receive_buffer = 0;
  /**
   * Don't send WINDOW_UPDATE as data is read: the peer stalls once the windows are used up
   * (zero-window tests). consume() releases window by hand.
   */
  bool manual_flow_control = false;

  Http2ClientOptions& withInitialWindowSize(uint32_t n) {
    initial_window_size = n;
    return *this;
  }
  Http2ClientOptions& withConnectionWindowSize(uint32_t n) {
    connection_window_size = n;
    return *this;
  }
  Http2ClientOptions& withManualFlowControl(bool on = true) {
    manual_flow_control = on;
    return *this;
  }
};

/**
 * An h2c (prior knowledge) client on one TCP connection, driven synchronously by the calling
 * thread: submit() queues streams, and every wait*() call pumps the socket (poll + nghttp2)
 * until its condition holds or the deadline passes. Many concurrent streams share the one
 * connection, so "100 streams on one connection" is literally that.
 *
 *   Http2Client client(proxy_port);
 *   ASSERT_TRUE(client.connect()) << client.lastError();
 *   std::vector<int32_t> ids;
 *   for (int i = 0; i < 100; ++i) ids.push_back(client.submit(http2Get("/item")));
 *   ASSERT_TRUE(client.waitForResponses(ids));
 *   EXPECT_EQ(200, client.response(ids[0]).status);
 *
 *   auto rpc = client.grpcUnary("/ranking.v1.Ranker/Rank", "req");
 *   EXPECT_EQ(GrpcStatus::Ok, rpc.grpcStatus());
 *
 * Thread: one thread at a time (not locked). Not copyable.
 */
class Http2Client {
public:
  Http2Client(std::string host, uint16_t port, Http2ClientOptions options = {});
  explicit Http2Client(uint16_t port, Http2ClientOptions options = {})
      : Http2Client("127.0.0.1", port, options) {}
  ~Http2Client();
  Http2Client(const Http2Client&) = delete;
  Http2Client& operator=(const Http2Client&) = delete;

  /**
   * Connects, sends the preface and SETTINGS, and waits for the peer's SETTINGS (proving it
   * speaks HTTP/2). False with lastError() otherwise.
   */
  bool connect(Deadline deadline = defaultDeadline());
  /** Connection usable: connected, not closed, no GOAWAY received. */
  bool isOpen() const;
  /** Closes the socket (no GOAWAY). */
  void close();

  /**
   * Queues a request; nothing is written until the next wait*() / flush(). Returns the stream
   * id, or -1 (lastError()) when the session refuses (e.g. after GOAWAY).
   */
  int32_t submit(const Http2Request& request);
  /** Writes what is queued (bounded by the deadline). */
  bool flush(Deadline deadline = defaultDeadline());
  /** True once the stream is closed (any way). */
  bool waitForResponse(int32_t stream_id, Deadline deadline = defaultDeadline());
  /** True once every stream in `ids` is closed. */
  bool waitForResponses(const std::vector<int32_t>& ids, Deadline deadline = defaultDeadline());
  /** True once final headers arrived on the stream (or it closed). */
  bool waitForHeaders(int32_t stream_id, Deadline deadline = defaultDeadline());
  /** State of a submitted stream (an empty response for unknown ids). */
  const Http2Response& response(int32_t stream_id) const;
  /** submit() + waitForResponse(); nullopt on submit failure or deadline. */
  std::optional<Http2Response> request(const Http2Request& request,
                                       Deadline deadline = defaultDeadline());
  /** GET shortcut. */
  std::optional<Http2Response> get(std::string path, Headers headers = {},
                                   Deadline deadline = defaultDeadline());

  /** Sends RST_STREAM(error_code) for a stream now. Default CANCEL (0x8). */
  bool resetStream(int32_t stream_id, uint32_t error_code = 0x8,
                   Deadline deadline = defaultDeadline());
  /** Sends GOAWAY(error_code) now. */
  bool sendGoAway(uint32_t error_code = 0, Deadline deadline = defaultDeadline());
  /** Manual flow control: gives `bytes` of window back for the stream (and the connection). */
  bool consume(int32_t stream_id, size_t bytes, Deadline deadline = defaultDeadline());

  bool goAwayReceived() const { return goaway_received_; }
  uint32_t goAwayErrorCode() const { return goaway_error_code_; }
  int32_t goAwayLastStreamId() const { return goaway_last_stream_id_; }
  /** Pumps until a GOAWAY arrives. */
  bool waitForGoAway(Deadline deadline = defaultDeadline());
  /** Pumps until the peer closes the TCP connection. */
  bool waitForClose(Deadline deadline = defaultDeadline());
  bool peerClosed() const { return peer_closed_; }

  /**
   * Pumps I/O until `predicate` holds or the deadline. The building block of every wait; use it
   * for custom conditions. Returns the predicate's final value.
   */
  bool runUntil(const std::function<bool()>& predicate, Deadline deadline = defaultDeadline());

  /**
   * A unary gRPC call: POST path with content-type application/grpc, te: trailers, the message
   * framed, optional grpc-timeout and metadata.
   */
  GrpcResponse grpcUnary(const std::string& path, std::string_view message,
                         Deadline deadline = defaultDeadline(), Headers metadata = {},
                         std::optional<std::chrono::milliseconds> grpc_timeout = std::nullopt);

  /**
   * Writes bytes straight to the socket, bypassing nghttp2 (hostile frames). The session does
   * not know about them; use on a connection you only observe afterwards.
   */
  bool sendRaw(std::string_view bytes, Deadline deadline = defaultDeadline());

  /** Streams opened and not yet closed. */
  size_t openStreams() const;
  const std::string& lastError() const { return error_; }
  int fd() const { return fd_; }

  // nghttp2 glue (public for the C callbacks in http2_client.cc; not part of the test API).
  struct StreamState;
  StreamState* streamState(int32_t id);
  void onGoAway(uint32_t code, int32_t last_stream_id);
  void onSettings() { settings_received_ = true; }

private:
  bool pumpOnce(Deadline deadline);
  bool writePending(Deadline deadline, bool block);

  std::string host_;
  uint16_t port_;
  Http2ClientOptions options_;
  int fd_ = -1;
  nghttp2_session* session_ = nullptr;
  std::string out_;  // serialized by nghttp2, not yet written
  std::map<int32_t, std::unique_ptr<StreamState>> streams_;
  bool settings_received_ = false;
  bool peer_closed_ = false;
  bool goaway_received_ = false;
  uint32_t goaway_error_code_ = 0;
  int32_t goaway_last_stream_id_ = -1;
  std::string error_;
};

}  // namespace bulwark::testing
