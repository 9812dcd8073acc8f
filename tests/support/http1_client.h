#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/headers.h"
#include "tests/support/wait.h"

namespace bulwark::testing {

/**
 * An HTTP/1.1 request to serialize. Host is added (host:port of the client) unless present or
 * add_host is false; Content-Length is added for bodies unless the request is chunked or the
 * headers already carry Content-Length / Transfer-Encoding (then the body goes out as given,
 * which is what smuggling tests need).
 * Thread: value type.
 */
struct Http1Request {
  std::string method = "GET";
  std::string path = "/";
  std::string version = "HTTP/1.1";
  Headers headers;
  std::string body;
  /** Stream this many bodyPattern() bytes instead of `body` (never held in memory). */
  std::optional<uint64_t> generated_body_bytes;
  /** Send the body with Transfer-Encoding: chunked (one chunk per write). */
  bool chunked = false;
  /** Chunked trailer section (only with chunked). */
  Headers trailers;
  bool add_host = true;

  Http1Request& withHeader(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
    return *this;
  }
};

/** GET path with extra headers. */
Http1Request http1Get(std::string path, Headers headers = {});
/** method path with body. */
Http1Request http1Request(std::string method, std::string path, Headers headers = {},
                          std::string body = {});

/** How readResponse() treats the body. Thread: value type. */
struct Http1ReadOptions {
  /** The request was HEAD: the response has no body whatever its headers say. */
  bool head = false;
  /** Count body bytes without storing them (large downloads). */
  bool discard_body = false;
  /** Return 1xx interim responses too instead of skipping them. */
  bool return_informational = false;
};

/** A parsed HTTP/1.x response. Thread: value type. */
struct Http1Response {
  int status = 0;
  std::string reason;
  /** "1.1" or "1.0". */
  std::string version;
  Headers headers;
  std::string body;
  uint64_t body_bytes = 0;
  Headers trailers;
  bool chunked = false;
  /** llhttp's keep-alive verdict (false after Connection: close or HTTP/1.0). */
  bool keep_alive = true;
  /** Every body byte equals bodyPattern() at its offset. */
  bool body_matches_pattern = true;
  /** Status codes of 1xx responses skipped before this one. */
  std::vector<int> informational;
  /**
   * The whole message arrived (framing satisfied). False when the connection closed or the
   * deadline passed mid-body: the response is then truncated, and `error` says how.
   */
  bool complete = false;
  std::string error;
  Clock::time_point headers_time{};
  Clock::time_point complete_time{};

  std::optional<std::string> header(std::string_view name) const {
    return findHeader(headers, name);
  }
  std::optional<std::string> trailer(std::string_view name) const {
    return findHeader(trailers, name);
  }
};

/**
 * A blocking HTTP/1.1 client over one TCP connection, every call bounded by a deadline. Speaks
 * well-formed HTTP (request(), pipeline(), uploads of generated bodies) and also lets hostile
 * tests write arbitrary bytes (sendRaw()) and see exactly how the peer reacts (readResponse(),
 * readUntilClose(), waitForClose()). Responses are parsed with llhttp: Content-Length, chunked
 * with trailers, close-delimited, 1xx skipping.
 *
 *   Http1Client client(proxy_port);
 *   auto r = client.request(http1Get("/hello"));
 *   ASSERT_TRUE(r) << client.lastError();
 *   EXPECT_EQ(200, r->status);
 *
 * Thread: one thread at a time (not internally locked). Movable-by-pointer only.
 */
class Http1Client {
public:
  Http1Client(std::string host, uint16_t port);
  explicit Http1Client(uint16_t port) : Http1Client("127.0.0.1", port) {}
  ~Http1Client();
  Http1Client(const Http1Client&) = delete;
  Http1Client& operator=(const Http1Client&) = delete;

  /** SO_RCVBUF for the next connect() (slow-reader tests). */
  void setReceiveBufferSize(int bytes) { rcvbuf_ = bytes; }
  /** Connect from this local address (numeric), e.g. "127.0.0.2"; before the first connect. */
  void setSourceAddress(std::string host) { source_host_ = std::move(host); }
  /** Opens the connection (closing any previous one). */
  bool connect(Deadline deadline = defaultDeadline());
  bool isConnected() const { return fd_ >= 0; }
  /** Orderly close (FIN). */
  void close();
  /** Abortive close (TCP RST). */
  void closeAbortive();
  /** Half-close: no more bytes from us; the peer still may answer. */
  void shutdownWrite();

  /** Writes bytes verbatim (connects first if needed). */
  bool sendRaw(std::string_view bytes, Deadline deadline = defaultDeadline());
  /** Serializes and writes a request, streaming generated bodies. */
  bool sendRequest(const Http1Request& request, Deadline deadline = defaultDeadline());
  /**
   * Reads one response. nullopt when no status line arrived (deadline, close, parse error;
   * see lastError()). A response whose body was cut off is returned with complete == false.
   */
  std::optional<Http1Response> readResponse(Deadline deadline = defaultDeadline(),
                                            const Http1ReadOptions& options = {});
  /** sendRequest() + readResponse() (HEAD handled). Connects first if needed. */
  std::optional<Http1Response> request(const Http1Request& request,
                                       Deadline deadline = defaultDeadline(),
                                       Http1ReadOptions options = {});
  /** GET shortcut. */
  std::optional<Http1Response> get(std::string path, Headers headers = {},
                                   Deadline deadline = defaultDeadline());
  /**
   * Pipelining: writes every request back to back before reading anything, then reads the responses
   * in order. Stops at the first failure, so the result may be shorter than `requests`.
   */
  std::vector<Http1Response> pipeline(const std::vector<Http1Request>& requests,
                                      Deadline deadline = defaultDeadline());

  /**
   * True once the peer closed (FIN or RST). Bytes that arrive meanwhile are kept and returned
   * by the next readResponse()/readUntilClose().
   */
  bool waitForClose(Deadline deadline = defaultDeadline());
  /** Every byte until the peer closes or the deadline (raw wire view for hostile tests). */
  std::string readUntilClose(Deadline deadline = defaultDeadline());
  /** True when the last close observed was a TCP RST (ECONNRESET). */
  bool peerReset() const { return peer_reset_; }
  bool peerClosed() const { return peer_closed_; }

  const std::string& lastError() const { return error_; }
  int fd() const { return fd_; }
  /** Bytes read from the socket since connect(). */
  uint64_t bytesReceived() const { return bytes_received_; }

private:
  bool ensureConnected(Deadline deadline);
  bool readMore(Deadline deadline);

  std::string host_;
  std::string source_host_;
  uint16_t port_;
  int fd_ = -1;
  int rcvbuf_ = 0;
  std::string buf_;  // received, not yet parsed
  bool peer_closed_ = false;
  bool peer_reset_ = false;
  uint64_t bytes_received_ = 0;
  std::string error_;
};

}  // namespace bulwark::testing
