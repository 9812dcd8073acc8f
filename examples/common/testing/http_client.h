#pragma once

// A tiny blocking HTTP/1.1 client for tests: one request at a time on a keep-alive connection,
// with a deadline, and a precise account of how a request failed (timeout, reset, early close).

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"

namespace bulwark::examples::testing {

struct HttpClientResponse {
  int status = 0;
  /** Header names lower-cased; a repeated header keeps its last value. */
  std::map<std::string, std::string> headers;
  std::string body;

  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

/** How a request ended. */
enum class HttpOutcome {
  Ok,                // a complete response was read
  ConnectFailed,     // nobody listening
  Timeout,           // no complete response before the deadline
  ConnectionClosed,  // the server closed (FIN) before the response was complete
  ConnectionReset,   // the server reset the connection (RST) before the response was complete
  BadResponse,       // not parseable HTTP
};

const char* toString(HttpOutcome outcome);

struct HttpCallResult {
  HttpOutcome outcome = HttpOutcome::Ok;
  /** Complete when outcome is Ok; otherwise what had arrived (status 0 if no headers yet). */
  HttpClientResponse response;
  std::string detail;

  bool ok() const { return outcome == HttpOutcome::Ok; }
};

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

/**
 * One client connection to 127.0.0.1:port.
 * Thread: owning test thread.
 */
class HttpConnection {
public:
  static Result<std::unique_ptr<HttpConnection>> connect(int port);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  /**
   * Sends one request and reads the response. Adds Host and Content-Length. After any outcome
   * but Ok the connection is closed and further requests report ConnectionClosed.
   */
  HttpCallResult request(const std::string& method, const std::string& path,
                         const HttpHeaders& headers = {}, const std::string& body = "",
                         std::chrono::milliseconds timeout = std::chrono::seconds(2));

  /** True after the server answered with Connection: close or the connection failed. */
  bool closed() const { return fd_ < 0; }

private:
  explicit HttpConnection(int fd, int port) : fd_(fd), port_(port) {}
  void closeSocket();

  int fd_;
  int port_;
};

/** One request on a fresh connection. */
HttpCallResult httpRequest(int port, const std::string& method, const std::string& path,
                           const HttpHeaders& headers = {}, const std::string& body = "",
                           std::chrono::milliseconds timeout = std::chrono::seconds(2));

/** POST /_fault with `json` on a fault control port; Ok with status 200 when accepted. */
HttpCallResult setFaults(int control_port, const std::string& json);

}  // namespace bulwark::examples::testing
