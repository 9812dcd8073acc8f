#include "examples/common/testing/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include <llhttp.h>

namespace bulwark::examples::testing {
namespace {

struct ParseState {
  HttpClientResponse* response = nullptr;
  std::string field;
  std::string value;
  bool in_value = false;
  bool complete = false;
  bool keep_alive = true;

  void flushHeader() {
    if (!field.empty()) {
      std::string lower = field;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      response->headers[lower] = value;
    }
    field.clear();
    value.clear();
    in_value = false;
  }
};

ParseState& stateOf(llhttp_t* parser) { return *static_cast<ParseState*>(parser->data); }

int onHeaderField(llhttp_t* p, const char* at, size_t len) {
  auto& s = stateOf(p);
  if (s.in_value) {
    s.flushHeader();
  }
  s.field.append(at, len);
  return 0;
}

int onHeaderValue(llhttp_t* p, const char* at, size_t len) {
  auto& s = stateOf(p);
  s.in_value = true;
  s.value.append(at, len);
  return 0;
}

int onHeadersComplete(llhttp_t* p) {
  auto& s = stateOf(p);
  s.flushHeader();
  s.response->status = llhttp_get_status_code(p);
  return 0;
}

int onBody(llhttp_t* p, const char* at, size_t len) {
  stateOf(p).response->body.append(at, len);
  return 0;
}

int onMessageComplete(llhttp_t* p) {
  auto& s = stateOf(p);
  s.complete = true;
  s.keep_alive = llhttp_should_keep_alive(p) != 0;
  return HPE_PAUSED;  // one response per request; ignore anything after it
}

}  // namespace

const char* toString(HttpOutcome outcome) {
  switch (outcome) {
    case HttpOutcome::Ok: return "Ok";
    case HttpOutcome::ConnectFailed: return "ConnectFailed";
    case HttpOutcome::Timeout: return "Timeout";
    case HttpOutcome::ConnectionClosed: return "ConnectionClosed";
    case HttpOutcome::ConnectionReset: return "ConnectionReset";
    case HttpOutcome::BadResponse: return "BadResponse";
  }
  return "?";
}

Result<std::unique_ptr<HttpConnection>> HttpConnection::connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return Status::error(std::string("socket: ") + strerror(errno));
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    std::string error = strerror(errno);
    close(fd);
    return Status::error("connect 127.0.0.1:" + std::to_string(port) + ": " + error);
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return std::unique_ptr<HttpConnection>(new HttpConnection(fd, port));
}

HttpConnection::~HttpConnection() { closeSocket(); }

void HttpConnection::closeSocket() {
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
}

HttpCallResult HttpConnection::request(const std::string& method, const std::string& path,
                                       const HttpHeaders& headers, const std::string& body,
                                       std::chrono::milliseconds timeout) {
  HttpCallResult result;
  if (fd_ < 0) {
    result.outcome = HttpOutcome::ConnectionClosed;
    result.detail = "connection already closed";
    return result;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string wire =
      method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) + "\r\n";
  for (const auto& [name, value] : headers) {
    wire += name + ": " + value + "\r\n";
  }
  if (!body.empty() || method == "POST" || method == "PUT") {
    wire += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  wire += "\r\n" + body;
  size_t sent = 0;
  while (sent < wire.size()) {
    ssize_t n = ::send(fd_, wire.data() + sent, wire.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      result.outcome =
          errno == ECONNRESET ? HttpOutcome::ConnectionReset : HttpOutcome::ConnectionClosed;
      result.detail = std::string("send: ") + strerror(errno);
      closeSocket();
      return result;
    }
    sent += static_cast<size_t>(n);
  }

  llhttp_settings_t settings;
  llhttp_settings_init(&settings);
  settings.on_header_field = onHeaderField;
  settings.on_header_value = onHeaderValue;
  settings.on_headers_complete = onHeadersComplete;
  settings.on_body = onBody;
  settings.on_message_complete = onMessageComplete;
  llhttp_t parser;
  llhttp_init(&parser, HTTP_RESPONSE, &settings);
  ParseState state;
  state.response = &result.response;
  parser.data = &state;

  char buf[16384];
  while (!state.complete) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd pfd{fd_, POLLIN, 0};
    int ready = left.count() > 0 ? poll(&pfd, 1, static_cast<int>(left.count())) : 0;
    if (ready < 0 && errno == EINTR) {
      continue;
    }
    if (ready <= 0) {
      result.outcome = HttpOutcome::Timeout;
      result.detail = "no complete response within " + std::to_string(timeout.count()) + " ms";
      closeSocket();
      return result;
    }
    ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      result.outcome =
          errno == ECONNRESET ? HttpOutcome::ConnectionReset : HttpOutcome::ConnectionClosed;
      result.detail = std::string("recv: ") + strerror(errno);
      closeSocket();
      return result;
    }
    if (n == 0) {
      // EOF: complete only when the response is delimited by the close itself.
      if (llhttp_finish(&parser) == HPE_OK && state.complete) {
        break;
      }
      result.outcome = HttpOutcome::ConnectionClosed;
      result.detail = "server closed the connection before the response was complete";
      closeSocket();
      return result;
    }
    llhttp_errno_t err = llhttp_execute(&parser, buf, static_cast<size_t>(n));
    if (err != HPE_OK && err != HPE_PAUSED) {
      result.outcome = HttpOutcome::BadResponse;
      result.detail = std::string("parse error: ") + llhttp_errno_name(err);
      closeSocket();
      return result;
    }
  }
  if (!state.keep_alive) {
    closeSocket();
  }
  return result;
}

HttpCallResult httpRequest(int port, const std::string& method, const std::string& path,
                           const HttpHeaders& headers, const std::string& body,
                           std::chrono::milliseconds timeout) {
  auto conn = HttpConnection::connect(port);
  if (!conn) {
    HttpCallResult result;
    result.outcome = HttpOutcome::ConnectFailed;
    result.detail = conn.error();
    return result;
  }
  return (*conn)->request(method, path, headers, body, timeout);
}

HttpCallResult setFaults(int control_port, const std::string& json) {
  return httpRequest(control_port, "POST", "/_fault", {{"Content-Type", "application/json"}}, json);
}

}  // namespace bulwark::examples::testing
