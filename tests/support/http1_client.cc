#include "tests/support/http1_client.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <llhttp.h>

#include "tests/support/body_pattern.h"
#include "tests/support/socket_util.h"

namespace bulwark::testing {

namespace {

constexpr size_t kReadChunk = 256 * 1024;

/** Parser callbacks' view of the response being read. */
struct ParseContext {
  Http1Response* r = nullptr;
  const Http1ReadOptions* options = nullptr;
  std::string field;
  std::string value;
  bool headers_done = false;
  bool done = false;
};

ParseContext& ctx(llhttp_t* p) { return *static_cast<ParseContext*>(p->data); }

const llhttp_settings_t& responseSettings() {
  static const llhttp_settings_t settings = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_status = [](llhttp_t* p, const char* at, size_t len) {
      ctx(p).r->reason.append(at, len);
      return 0;
    };
    s.on_header_field = [](llhttp_t* p, const char* at, size_t len) {
      ctx(p).field.append(at, len);
      return 0;
    };
    s.on_header_value = [](llhttp_t* p, const char* at, size_t len) {
      ctx(p).value.append(at, len);
      return 0;
    };
    s.on_header_value_complete = [](llhttp_t* p) {
      auto& c = ctx(p);
      (c.headers_done ? c.r->trailers : c.r->headers)
          .emplace_back(std::move(c.field), std::move(c.value));
      c.field.clear();
      c.value.clear();
      return 0;
    };
    s.on_headers_complete = [](llhttp_t* p) {
      auto& c = ctx(p);
      c.headers_done = true;
      c.r->status = llhttp_get_status_code(p);
      c.r->version =
          std::to_string(llhttp_get_http_major(p)) + "." + std::to_string(llhttp_get_http_minor(p));
      c.r->headers_time = Clock::now();
      for (const auto& v : headerValues(c.r->headers, "transfer-encoding")) {
        if (toLower(v).find("chunked") != std::string::npos) {
          c.r->chunked = true;
        }
      }
      // 1 = "no body": HEAD responses carry framing headers for a body that is never sent.
      return (c.options->head && c.r->status >= 200) ? 1 : 0;
    };
    s.on_body = [](llhttp_t* p, const char* at, size_t len) {
      auto& c = ctx(p);
      if (c.r->body_matches_pattern &&
          !matchesBodyPattern(c.r->body_bytes, std::string_view(at, len))) {
        c.r->body_matches_pattern = false;
      }
      c.r->body_bytes += len;
      if (!c.options->discard_body) {
        c.r->body.append(at, len);
      }
      return 0;
    };
    s.on_message_complete = [](llhttp_t* p) {
      auto& c = ctx(p);
      c.done = true;
      c.r->keep_alive = llhttp_should_keep_alive(p) != 0;
      c.r->complete = true;
      c.r->complete_time = Clock::now();
      // Stop at the message end: bytes behind it belong to the next (pipelined) response.
      return static_cast<int>(HPE_PAUSED);
    };
    return s;
  }();
  return settings;
}

bool hasFraming(const Headers& headers) {
  return findHeader(headers, "content-length") || findHeader(headers, "transfer-encoding");
}

}  // namespace

Http1Request http1Get(std::string path, Headers headers) {
  Http1Request r;
  r.path = std::move(path);
  r.headers = std::move(headers);
  return r;
}

Http1Request http1Request(std::string method, std::string path, Headers headers, std::string body) {
  Http1Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.headers = std::move(headers);
  r.body = std::move(body);
  return r;
}

Http1Client::Http1Client(std::string host, uint16_t port) : host_(std::move(host)), port_(port) {}

Http1Client::~Http1Client() { close(); }

bool Http1Client::connect(Deadline deadline) {
  close();
  buf_.clear();
  peer_closed_ = peer_reset_ = false;
  bytes_received_ = 0;
  fd_ = connectTcp(host_, port_, deadline, &error_, rcvbuf_, source_host_);
  return fd_ >= 0;
}

void Http1Client::close() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
  fd_ = -1;
}

void Http1Client::closeAbortive() {
  if (fd_ >= 0) {
    bulwark::testing::closeAbortive(fd_);
  }
  fd_ = -1;
}

void Http1Client::shutdownWrite() {
  if (fd_ >= 0) {
    ::shutdown(fd_, SHUT_WR);
  }
}

bool Http1Client::ensureConnected(Deadline deadline) {
  if (fd_ >= 0 && !peer_closed_) {
    return true;
  }
  return connect(deadline);
}

bool Http1Client::sendRaw(std::string_view bytes, Deadline deadline) {
  if (!ensureConnected(deadline)) {
    return false;
  }
  return sendAll(fd_, bytes, deadline, &error_);
}

bool Http1Client::sendRequest(const Http1Request& request, Deadline deadline) {
  if (!ensureConnected(deadline)) {
    return false;
  }
  const bool user_framing = hasFraming(request.headers);
  const bool chunked = request.chunked && !user_framing;
  const uint64_t body_len = request.generated_body_bytes
                                ? *request.generated_body_bytes
                                : static_cast<uint64_t>(request.body.size());
  std::string head = request.method + " " + request.path + " " + request.version + "\r\n";
  if (request.add_host && !findHeader(request.headers, "host")) {
    head += "Host: " + host_ + ":" + std::to_string(port_) + "\r\n";
  }
  for (const auto& [k, v] : request.headers) {
    head += k + ": " + v + "\r\n";
  }
  if (chunked) {
    head += "Transfer-Encoding: chunked\r\n";
  } else if (!user_framing && (body_len > 0 || request.method == "POST" ||
                               request.method == "PUT" || request.method == "PATCH")) {
    head += "Content-Length: " + std::to_string(body_len) + "\r\n";
  }
  head += "\r\n";
  auto writeBody = [&](std::string_view piece) {
    if (!chunked) {
      return sendAll(fd_, piece, deadline, &error_);
    }
    char line[32];
    const int n = std::snprintf(line, sizeof(line), "%zx\r\n", piece.size());
    return sendAll(fd_, std::string_view(line, static_cast<size_t>(n)), deadline, &error_) &&
           sendAll(fd_, piece, deadline, &error_) && sendAll(fd_, "\r\n", deadline, &error_);
  };
  if (!request.generated_body_bytes && !chunked) {
    // One write for small requests keeps pipelining and smuggling probes in a single segment.
    return sendAll(fd_, head + request.body, deadline, &error_);
  }
  if (!sendAll(fd_, head, deadline, &error_)) {
    return false;
  }
  if (request.generated_body_bytes) {
    for (uint64_t off = 0; off < body_len;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(kBodyPatternMaxSpan, body_len - off));
      if (!writeBody(std::string_view(bodyPatternAt(off), n))) {
        return false;
      }
      off += n;
    }
  } else if (!request.body.empty()) {
    if (!writeBody(request.body)) {
      return false;
    }
  }
  if (chunked) {
    std::string tail = "0\r\n";
    for (const auto& [k, v] : request.trailers) {
      tail += k + ": " + v + "\r\n";
    }
    tail += "\r\n";
    return sendAll(fd_, tail, deadline, &error_);
  }
  return true;
}

bool Http1Client::readMore(Deadline deadline) {
  if (fd_ < 0 || peer_closed_) {
    return false;
  }
  char scratch[kReadChunk];
  const RecvResult rr = recvSome(fd_, scratch, sizeof(scratch), deadline);
  if (rr.n > 0) {
    buf_.append(scratch, static_cast<size_t>(rr.n));
    bytes_received_ += static_cast<uint64_t>(rr.n);
    return true;
  }
  if (rr.n == -2) {
    error_ = "deadline exceeded while reading";
    return false;
  }
  peer_closed_ = true;
  peer_reset_ = rr.n == -1 && rr.err == ECONNRESET;
  error_ = rr.n == 0 ? "connection closed by peer" : std::string("recv: ") + std::strerror(rr.err);
  return false;
}

std::optional<Http1Response> Http1Client::readResponse(Deadline deadline,
                                                       const Http1ReadOptions& options) {
  if (fd_ < 0 && buf_.empty()) {
    error_ = "not connected";
    return std::nullopt;
  }
  std::vector<int> informational;
  while (true) {
    Http1Response response;
    ParseContext c;
    c.r = &response;
    c.options = &options;
    llhttp_t parser;
    llhttp_init(&parser, HTTP_RESPONSE, &responseSettings());
    parser.data = &c;
    while (!c.done) {
      if (buf_.empty() && !readMore(deadline)) {
        if (peer_closed_ && llhttp_finish(&parser) == HPE_OK && c.done) {
          break;  // close-delimited body
        }
        if (!c.headers_done) {
          return std::nullopt;
        }
        response.error = error_ + " (response truncated)";
        response.informational = informational;
        return response;
      }
      const llhttp_errno_t err = llhttp_execute(&parser, buf_.data(), buf_.size());
      if (err == HPE_OK) {
        buf_.clear();
      } else if (err == HPE_PAUSED) {
        buf_.erase(0, static_cast<size_t>(llhttp_get_error_pos(&parser) - buf_.data()));
      } else {
        error_ = std::string("response parse error: ") + llhttp_errno_name(err) + ": " +
                 (parser.reason != nullptr ? parser.reason : "");
        if (!c.headers_done) {
          return std::nullopt;
        }
        response.complete = false;
        response.error = error_;
        return response;
      }
    }
    if (response.status >= 100 && response.status < 200 && !options.return_informational) {
      informational.push_back(response.status);
      continue;
    }
    response.informational = std::move(informational);
    return response;
  }
}

std::optional<Http1Response> Http1Client::request(const Http1Request& request, Deadline deadline,
                                                  Http1ReadOptions options) {
  if (!sendRequest(request, deadline)) {
    return std::nullopt;
  }
  options.head = options.head || request.method == "HEAD";
  return readResponse(deadline, options);
}

std::optional<Http1Response> Http1Client::get(std::string path, Headers headers,
                                              Deadline deadline) {
  return request(http1Get(std::move(path), std::move(headers)), deadline);
}

std::vector<Http1Response> Http1Client::pipeline(const std::vector<Http1Request>& requests,
                                                 Deadline deadline) {
  std::vector<Http1Response> out;
  for (const auto& r : requests) {
    if (r.generated_body_bytes || r.chunked) {
      error_ = "pipeline() takes requests with plain bodies only";
      return out;
    }
  }
  if (!ensureConnected(deadline)) {
    return out;
  }
  for (const auto& r : requests) {
    if (!sendRequest(r, deadline)) {
      return out;
    }
  }
  for (const auto& r : requests) {
    Http1ReadOptions o;
    o.head = r.method == "HEAD";
    auto resp = readResponse(deadline, o);
    if (!resp) {
      break;
    }
    const bool complete = resp->complete;
    out.push_back(std::move(*resp));
    if (!complete) {
      break;
    }
  }
  return out;
}

bool Http1Client::waitForClose(Deadline deadline) {
  while (!peer_closed_) {
    if (fd_ < 0) {
      return false;
    }
    if (!readMore(deadline) && !peer_closed_) {
      return false;
    }
  }
  return true;
}

std::string Http1Client::readUntilClose(Deadline deadline) {
  waitForClose(deadline);
  std::string out;
  out.swap(buf_);
  return out;
}

}  // namespace bulwark::testing
