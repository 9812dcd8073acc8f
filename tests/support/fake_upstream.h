#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/grpc_codec.h"
#include "tests/support/headers.h"
#include "tests/support/wait.h"

namespace bulwark::testing {

/** Wire protocol a FakeUpstream speaks. Auto sniffs the HTTP/2 preface per connection. */
enum class Protocol { Http1, Http2, Auto };

/** "HTTP/1.1", "HTTP/2" or "auto". */
const char* protocolName(Protocol protocol);

/** HTTP/2 error codes used by the fault helpers (RFC 9113 §7), without pulling in nghttp2.h. */
namespace h2_error {
inline constexpr uint32_t kNoError = 0x0;
inline constexpr uint32_t kProtocolError = 0x1;
inline constexpr uint32_t kInternalError = 0x2;
inline constexpr uint32_t kRefusedStream = 0x7;
inline constexpr uint32_t kCancel = 0x8;
inline constexpr uint32_t kEnhanceYourCalm = 0xb;
}  // namespace h2_error

/**
 * One request as a FakeUpstream received it. A copy is appended to the upstream's log when the
 * request ends (complete, or cut off by the peer), before the handler runs.
 * Thread: value type, any.
 */
struct ReceivedRequest {
  /** Process-wide, strictly increasing: orders requests across several upstreams. */
  uint64_t sequence = 0;
  /** "127.0.0.1:PORT" of the FakeUpstream that received it (tells hosts of a group apart). */
  std::string upstream;
  /** FakeUpstreamOptions::name of that upstream (may be empty). */
  std::string upstream_name;
  /** Protocol actually spoken on the connection (never Auto). */
  Protocol protocol = Protocol::Http1;
  /** Process-wide connection id; equal ids mean the same TCP connection (pooling tests). */
  uint64_t connection_id = 0;
  /** HTTP/2 stream id; 0 for HTTP/1.1. */
  int32_t stream_id = 0;
  /** 0 for the first request on its connection, 1 for the next, ... */
  uint32_t request_index_on_connection = 0;

  std::string method;
  /** Request target as received (origin form, with query). */
  std::string path;
  /** :authority, or the Host header for HTTP/1.1. */
  std::string authority;
  /** :scheme for HTTP/2, "http" for HTTP/1.1. */
  std::string scheme;
  /** "1.0", "1.1" or "2". */
  std::string http_version;
  /** Regular headers in wire order (HTTP/1.1 keeps the case, HTTP/2 is lower case). */
  Headers headers;
  /** Trailers (HTTP/2 trailing HEADERS, or the chunked trailer section). */
  Headers trailers;
  /** Body bytes; empty when the upstream does not store bodies (setStoreBodies(false)). */
  std::string body;
  /** Body length received, counted even when not stored. */
  uint64_t body_bytes = 0;
  /** True when every body byte equals bodyPattern() at its offset (generated uploads). */
  bool body_matches_pattern = true;

  /** False when the peer reset the stream or closed the connection before the request ended. */
  bool complete = true;
  /** The response was fully handed to the socket (updated after the fact in the log). */
  bool response_finished = false;
  /**
   * The peer reset the stream / closed the connection before the response finished
   * (updated after the fact; proves cancellation propagated upstream).
   */
  bool cancelled_by_peer = false;

  /** Request headers complete. */
  Clock::time_point arrival_time{};
  /** Request ended (last body byte, or cut off). */
  Clock::time_point completion_time{};

  /** First value of a request header (case-insensitive). */
  std::optional<std::string> header(std::string_view name) const {
    return findHeader(headers, name);
  }
  /** First value of a request trailer (case-insensitive). */
  std::optional<std::string> trailer(std::string_view name) const {
    return findHeader(trailers, name);
  }
};

/** What a FakeUpstream does with a request, before any response byte. */
enum class ResponseAction {
  /** Send the response described by the other fields. */
  Respond,
  /** Never answer; keep the connection open (per-try / idle timeout tests). */
  Hang,
  /** HTTP/2: RST_STREAM(REFUSED_STREAM). HTTP/1.1: close the connection (FIN), no response. */
  Refuse,
  /** HTTP/2: RST_STREAM(h2_error_code). HTTP/1.1: abortive close (TCP RST). */
  ResetBeforeHeaders,
  /** Close the whole TCP connection (FIN) without responding, both protocols. */
  CloseBeforeHeaders,
  /**
   * HTTP/2: GOAWAY(goaway_error_code) whose last-stream-id excludes this stream, so the peer
   * knows it was not processed and may retry it; the connection closes once the streams below
   * it finish. HTTP/1.1: close without a response.
   */
  GoAwayUnprocessed,
  /** HTTP/1.1 only: write `raw` verbatim (hostile responses). HTTP/2: reset the stream. */
  Raw,
};

/** A fault injected once part of the response has been sent. */
enum class MidResponseFault {
  None,
  /**
   * After fault_after_body_bytes body bytes: HTTP/2 RST_STREAM(h2_error_code); HTTP/1.1 abortive
   * close (TCP RST). With 0 bytes this is "reset after headers".
   */
  ResetAfterBodyBytes,
  /** After fault_after_body_bytes body bytes: close the TCP connection (FIN), both protocols. */
  CloseAfterBodyBytes,
};

/**
 * A scripted response. Build one with the helpers below (respond(), respondGrpc(), hang(), ...)
 * and adjust it with the with*() modifiers, which return a modified copy:
 *
 *   upstream.script().otherwise(respond(200, {}, "hi").withDelay(50ms).withHeader("a", "b"));
 *
 * Body sources, in priority order: generated_body_bytes (pattern bytes made on the fly with
 * socket backpressure, so gigabytes never sit in memory), chunks (each chunk is one HTTP/1.1
 * chunk / one write), body.
 *
 * HTTP/1.1 framing: Content-Length is added unless the response is chunked (chunked flag,
 * chunks or trailers) or `headers` already carry Content-Length or Transfer-Encoding (then the
 * body is written as given: hostile tests can lie about the length). HTTP/2: content-length is
 * added for plain bodies without trailers unless already present.
 * Thread: value type, any.
 */
struct Response {
  int status = 200;
  Headers headers;
  std::string body;
  std::vector<std::string> chunks;
  std::optional<uint64_t> generated_body_bytes;
  /** HTTP/1.1: force Transfer-Encoding: chunked. */
  bool chunked = false;
  Headers trailers;

  /** Wait (event-loop timer) before the response headers. */
  std::chrono::milliseconds delay{0};
  /** Wait between the headers and the first body byte. */
  std::chrono::milliseconds body_delay{0};
  /** When > 0: send the body drip_bytes at a time with drip_interval between pieces. */
  size_t drip_bytes = 0;
  std::chrono::milliseconds drip_interval{0};

  ResponseAction action = ResponseAction::Respond;
  MidResponseFault fault = MidResponseFault::None;
  uint64_t fault_after_body_bytes = 0;
  /** RST_STREAM code for ResetBeforeHeaders / ResetAfterBodyBytes. */
  uint32_t h2_error_code = h2_error::kInternalError;

  /** HTTP/2: GOAWAY(last-stream-id = this stream) before the headers, then close when idle. */
  bool goaway_before = false;
  uint32_t goaway_error_code = h2_error::kNoError;
  /**
   * Close the connection after this response: HTTP/1.1 adds "Connection: close"; HTTP/2 sends
   * GOAWAY(NO_ERROR) and closes once the streams in flight finish.
   */
  bool close_connection = false;

  /** Bytes for ResponseAction::Raw. */
  std::string raw;
  /** ResponseAction::Raw: close (FIN) after writing `raw`; otherwise keep reading requests. */
  bool raw_close = true;

  Response withStatus(int s) const;
  Response withHeader(std::string name, std::string value) const;
  Response withTrailer(std::string name, std::string value) const;
  Response withBody(std::string b) const;
  Response withDelay(std::chrono::milliseconds d) const;
  Response withBodyDelay(std::chrono::milliseconds d) const;
  Response withDrip(size_t bytes, std::chrono::milliseconds interval) const;
  Response withChunked(bool on = true) const;
  Response withResetAfterHeaders(uint32_t h2_code = h2_error::kInternalError) const;
  Response withResetAfterBodyBytes(uint64_t n, uint32_t h2_code = h2_error::kInternalError) const;
  Response withCloseAfterBodyBytes(uint64_t n) const;
  Response withGoAway(uint32_t error_code = h2_error::kNoError) const;
  Response withCloseConnection() const;
};

/** status + headers + body. */
Response respond(int status, Headers headers = {}, std::string body = {});
/** A body sent as the given chunks (HTTP/1.1 chunked encoding, one chunk each). */
Response respondChunked(int status, std::vector<std::string> chunks, Headers trailers = {},
                        Headers headers = {});
/** Body followed by trailers (HTTP/2 trailing HEADERS; HTTP/1.1 chunked trailer section). */
Response respondWithTrailers(int status, std::string body, Headers trailers, Headers headers = {});
/** `bytes` bytes of bodyPattern(), generated while sending with backpressure. */
Response respondGenerated(int status, uint64_t bytes, Headers headers = {});
/**
 * A gRPC response. Ok: one message (`message`, possibly empty) then trailers grpc-status: 0.
 * Any other status: Trailers-Only (a single HEADERS frame with :status 200, content-type,
 * grpc-status and grpc-message) when `message` is empty, else message then trailers.
 */
Response respondGrpc(GrpcStatus status, std::string message = {}, std::string grpc_message = {});
/** Several gRPC messages, then grpc-status/grpc-message trailers (+ extra trailing metadata). */
Response respondGrpcMessages(std::vector<std::string> messages, GrpcStatus status = GrpcStatus::Ok,
                             std::string grpc_message = {}, Headers trailing_metadata = {});
/** Trailers-Only gRPC response (no DATA): how servers report errors before any message. */
Response respondGrpcTrailersOnly(GrpcStatus status, std::string grpc_message = {});
/** HTTP/1.1 only: write `bytes` verbatim, then close unless `close_after` is false. */
Response respondRaw(std::string bytes, bool close_after = true);
/** Never respond. */
Response hang();
/** REFUSED_STREAM (HTTP/2) / close without response (HTTP/1.1). */
Response refuse();
/** RST_STREAM before headers (HTTP/2) / TCP RST (HTTP/1.1). */
Response resetBeforeHeaders(uint32_t h2_code = h2_error::kInternalError);
/** Close the TCP connection without responding. */
Response closeBeforeHeaders();
/** GOAWAY that leaves this stream unprocessed (HTTP/2) / close (HTTP/1.1). */
Response goAway(uint32_t error_code = h2_error::kNoError);

/**
 * Echo mode: 200 with the request body as the body and, as headers: x-echo-method,
 * x-echo-path, x-echo-authority, x-echo-scheme, x-echo-protocol, x-echo-connection-id,
 * x-echo-stream-id, x-echo-body-bytes, x-upstream (address), x-upstream-name (when set), and
 * x-seen-<name> for every request header (lower-cased name, repeated values joined by ", ").
 */
Response echoResponse(const ReceivedRequest& request);

/** Builds the response for one request. Runs on the upstream's event-loop thread: don't block. */
using Handler = std::function<Response(const ReceivedRequest&)>;

/**
 * Ordered response rules, shared by every upstream of a FakeUpstreamGroup. For each request
 * (counted 1, 2, 3, ... in the order requests complete across all upstreams sharing the
 * script), the first matching rule wins: nthRequest(n), then matching()/forPath() rules in
 * the order added, then otherwise() (default: echoResponse).
 * Thread: any (internally locked). Rules may be changed while traffic flows.
 */
class Script {
public:
  /** Respond to the n-th request (1-based) with `response`. */
  Script& nthRequest(size_t n, Response response);
  /** Respond to requests whose path (query excluded) equals `path`. */
  Script& forPath(std::string path, Response response);
  /** Respond to requests for which `predicate` is true (runs on the upstream thread). */
  Script& matching(std::function<bool(const ReceivedRequest&)> predicate, Response response);
  /** Respond to requests for which `predicate` is true with handler(request). */
  Script& matching(std::function<bool(const ReceivedRequest&)> predicate, Handler handler);
  /** Fallback response. */
  Script& otherwise(Response response);
  /** Fallback handler. */
  Script& otherwise(Handler handler);
  /** Forget all rules and the request counter (fallback back to echo). */
  void reset();
  /** Requests answered through this script so far. */
  size_t dispatched() const;

  /** Picks the response for `request` and advances the counter. Thread: upstream threads. */
  Response next(const ReceivedRequest& request);

private:
  struct Rule {
    std::function<bool(const ReceivedRequest&)> predicate;
    Handler handler;
  };
  mutable std::mutex mu_;
  size_t counter_ = 0;                            // guarded by mu_
  std::vector<std::pair<size_t, Response>> nth_;  // guarded by mu_
  std::vector<Rule> rules_;                       // guarded by mu_
  Handler otherwise_;                             // guarded by mu_
};

/** Options for one FakeUpstream. Thread: value type. */
struct FakeUpstreamOptions {
  Protocol protocol = Protocol::Http1;
  /** Shown in x-upstream-name and ReceivedRequest::upstream_name. */
  std::string name;
  /** Numeric address to listen on: "127.0.0.1", another loopback address, or "::1". */
  std::string host = "127.0.0.1";
  /** 0 = ephemeral (always use 0 in tests; the bound port is read back with port()). */
  uint16_t port = 0;
  /** Keep request bodies in the log. Turn off for huge uploads: bytes are still counted. */
  bool store_bodies = true;
  /** SETTINGS_MAX_CONCURRENT_STREAMS advertised. */
  uint32_t h2_max_concurrent_streams = 1024;
  /** SETTINGS_INITIAL_WINDOW_SIZE advertised (per-stream receive window). */
  uint32_t h2_initial_window_size = 65535;
  /** Connection-level receive window (raised with WINDOW_UPDATE when > 65535). */
  uint32_t h2_connection_window_size = 65535;

  // Fluent setters: g++ 12 warns (-Wmissing-field-initializers, an error under -Werror) on
  // designated initializers that skip fields, so write
  // FakeUpstreamOptions().withProtocol(Protocol::Http2).withName("a") instead.
  FakeUpstreamOptions& withProtocol(Protocol p) {
    protocol = p;
    return *this;
  }
  FakeUpstreamOptions& withHost(std::string h) {
    host = std::move(h);
    return *this;
  }
  FakeUpstreamOptions& withName(std::string n) {
    name = std::move(n);
    return *this;
  }
  FakeUpstreamOptions& withStoreBodies(bool on) {
    store_bodies = on;
    return *this;
  }
  FakeUpstreamOptions& withH2MaxConcurrentStreams(uint32_t n) {
    h2_max_concurrent_streams = n;
    return *this;
  }
  FakeUpstreamOptions& withH2InitialWindowSize(uint32_t n) {
    h2_initial_window_size = n;
    return *this;
  }
  FakeUpstreamOptions& withH2ConnectionWindowSize(uint32_t n) {
    h2_connection_window_size = n;
    return *this;
  }
};

/**
 * A real HTTP/1.1 and/or h2c (prior knowledge) server on 127.0.0.1, running on its own thread
 * with its own event_base, standing in for a backend in integration and fault tests. It logs
 * every request and answers from a Script or a Handler.
 *
 *   FakeUpstream upstream(Protocol::Http2);
 *   upstream.script().nthRequest(1, resetBeforeHeaders()).otherwise(respond(200, {}, "ok"));
 *   ... point the proxy at upstream.address() ...
 *   ASSERT_TRUE(upstream.waitForRequests(2));
 *
 * Construction binds and starts the loop; ok() tells whether binding worked. The destructor
 * stops it. Control methods (goAwayAll(), closeAllConnections(), setters) are synchronous: they
 * return after the loop thread applied them.
 * Thread: any for every public method (the log and counters are locked or atomic). Handlers and
 * scripts run on the upstream's own thread. Not copyable or movable (the loop thread points at
 * it); use std::unique_ptr via start() to move it around.
 */
class FakeUpstream {
public:
  explicit FakeUpstream(FakeUpstreamOptions options = {});
  explicit FakeUpstream(Protocol protocol);
  ~FakeUpstream();
  FakeUpstream(const FakeUpstream&) = delete;
  FakeUpstream& operator=(const FakeUpstream&) = delete;

  /** Heap-allocated upstream; fails the current test (ADD_FAILURE) when it cannot bind. */
  static std::unique_ptr<FakeUpstream> start(Protocol protocol = Protocol::Http1);
  static std::unique_ptr<FakeUpstream> start(FakeUpstreamOptions options);

  /** False when the listener could not be created; error() says why. */
  bool ok() const;
  const std::string& error() const;

  uint16_t port() const;
  /** The listening host (FakeUpstreamOptions::host, "127.0.0.1" by default). */
  std::string host() const;
  /** "127.0.0.1:PORT" ("[::1]:PORT" for an IPv6 host). */
  std::string address() const;
  const FakeUpstreamOptions& options() const;

  /** Rules used when no handler is set. Shared with the group when started by one. */
  Script& script();
  /** Replace the script with a shared one (FakeUpstreamGroup uses this). */
  void setScript(std::shared_ptr<Script> script);
  /** Handler that takes precedence over the script; pass nullptr to go back to the script. */
  void setHandler(Handler handler);
  /** See FakeUpstreamOptions::store_bodies. */
  void setStoreBodies(bool store);
  /**
   * Blackhole mode: connections accepted from now on are never read from or answered (the
   * accept-and-never-answer fault). Existing connections are unaffected.
   */
  void setBlackhole(bool on);

  /** Snapshot of the log, in completion order. */
  std::vector<ReceivedRequest> requests() const;
  /** Log entry i (0-based), if present. */
  std::optional<ReceivedRequest> request(size_t i) const;
  size_t requestCount() const;
  /** True once at least n requests are in the log; false at the deadline. */
  bool waitForRequests(size_t n, Deadline deadline = defaultDeadline()) const;
  /** Empties the log (counters are unaffected). */
  void clearRequests();

  /** Connections currently open. */
  size_t connectionCount() const;
  /** Connections accepted since start. */
  size_t totalConnections() const;
  /** True once totalConnections() >= n. */
  bool waitForConnections(size_t n, Deadline deadline = defaultDeadline()) const;
  /** Requests whose headers arrived and whose response has not finished (includes hangs). */
  size_t activeStreams() const;
  /** Request body bytes received so far, updated as they arrive (also for unfinished ones). */
  uint64_t bodyBytesReceived() const;
  /** Response body bytes handed to the socket so far. */
  uint64_t bodyBytesSent() const;
  /** HTTP/1.1 requests rejected by the parser (answered 400 and closed). */
  size_t parseErrors() const;

  /**
   * Graceful shutdown signal to every open connection: HTTP/2 GOAWAY(error_code, last stream
   * processed); HTTP/1.1 closes idle connections and adds Connection: close to responses in
   * progress. New connections are still accepted.
   */
  void goAwayAll(uint32_t error_code = h2_error::kNoError);
  /** Closes every open connection now; `abortive` sends TCP RST (SO_LINGER 0) instead of FIN. */
  void closeAllConnections(bool abortive = false);
  /** Stops accepting, closes everything and joins the thread. Idempotent. */
  void stop();

  class Impl;

private:
  std::unique_ptr<Impl> impl_;
};

/**
 * N FakeUpstreams sharing one Script, for load-balancing, retry and outlier tests.
 *
 *   auto hosts = FakeUpstreamGroup::start(2, Protocol::Http2);
 *   hosts.script().nthRequest(1, respondGrpc(GrpcStatus::Unavailable));  // wherever it lands
 *   hosts.script().otherwise(respondGrpc(GrpcStatus::Ok, "ranked"));
 *
 * Upstream i is named "upstream-i". Thread: any (like FakeUpstream). Movable.
 */
class FakeUpstreamGroup {
public:
  static FakeUpstreamGroup start(size_t n, Protocol protocol = Protocol::Http1);
  static FakeUpstreamGroup start(size_t n, const FakeUpstreamOptions& options);

  FakeUpstreamGroup() = default;
  FakeUpstreamGroup(FakeUpstreamGroup&&) = default;
  FakeUpstreamGroup& operator=(FakeUpstreamGroup&&) = default;

  size_t size() const { return upstreams_.size(); }
  FakeUpstream& operator[](size_t i) { return *upstreams_.at(i); }
  FakeUpstream& at(size_t i) { return *upstreams_.at(i); }
  bool ok() const;

  Script& script() { return *script_; }
  /** Sets the same handler on every upstream. */
  void setHandler(const Handler& handler);

  /** "127.0.0.1:PORT" of each upstream, in index order. */
  std::vector<std::string> addresses() const;
  std::vector<uint16_t> ports() const;
  /** Merged log of all upstreams, in completion order. */
  std::vector<ReceivedRequest> requests() const;
  size_t requestCount() const;
  bool waitForRequests(size_t n, Deadline deadline = defaultDeadline()) const;
  /** requestCount() of each upstream, in index order. */
  std::vector<size_t> requestCountsPerUpstream() const;
  /** Index of the upstream whose address() is `address`, or -1. */
  int indexOf(std::string_view address) const;
  void stop();

private:
  std::shared_ptr<Script> script_ = std::make_shared<Script>();
  std::vector<std::unique_ptr<FakeUpstream>> upstreams_;
};

}  // namespace bulwark::testing
