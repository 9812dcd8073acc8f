// Response builders and Script for FakeUpstream (pure value code, no I/O).
#include <algorithm>

#include "tests/support/fake_upstream.h"

namespace bulwark::testing {

const char* protocolName(Protocol protocol) {
  switch (protocol) {
    case Protocol::Http1: return "HTTP/1.1";
    case Protocol::Http2: return "HTTP/2";
    case Protocol::Auto: return "auto";
  }
  return "?";
}

Response Response::withStatus(int s) const {
  Response r = *this;
  r.status = s;
  return r;
}

Response Response::withHeader(std::string name, std::string value) const {
  Response r = *this;
  r.headers.emplace_back(std::move(name), std::move(value));
  return r;
}

Response Response::withTrailer(std::string name, std::string value) const {
  Response r = *this;
  r.trailers.emplace_back(std::move(name), std::move(value));
  return r;
}

Response Response::withBody(std::string b) const {
  Response r = *this;
  r.body = std::move(b);
  return r;
}

Response Response::withDelay(std::chrono::milliseconds d) const {
  Response r = *this;
  r.delay = d;
  return r;
}

Response Response::withBodyDelay(std::chrono::milliseconds d) const {
  Response r = *this;
  r.body_delay = d;
  return r;
}

Response Response::withDrip(size_t bytes, std::chrono::milliseconds interval) const {
  Response r = *this;
  r.drip_bytes = bytes;
  r.drip_interval = interval;
  return r;
}

Response Response::withChunked(bool on) const {
  Response r = *this;
  r.chunked = on;
  return r;
}

Response Response::withResetAfterHeaders(uint32_t h2_code) const {
  return withResetAfterBodyBytes(0, h2_code);
}

Response Response::withResetAfterBodyBytes(uint64_t n, uint32_t h2_code) const {
  Response r = *this;
  r.fault = MidResponseFault::ResetAfterBodyBytes;
  r.fault_after_body_bytes = n;
  r.h2_error_code = h2_code;
  return r;
}

Response Response::withCloseAfterBodyBytes(uint64_t n) const {
  Response r = *this;
  r.fault = MidResponseFault::CloseAfterBodyBytes;
  r.fault_after_body_bytes = n;
  return r;
}

Response Response::withGoAway(uint32_t error_code) const {
  Response r = *this;
  r.goaway_before = true;
  r.goaway_error_code = error_code;
  return r;
}

Response Response::withCloseConnection() const {
  Response r = *this;
  r.close_connection = true;
  return r;
}

Response respond(int status, Headers headers, std::string body) {
  Response r;
  r.status = status;
  r.headers = std::move(headers);
  r.body = std::move(body);
  return r;
}

Response respondChunked(int status, std::vector<std::string> chunks, Headers trailers,
                        Headers headers) {
  Response r = respond(status, std::move(headers));
  r.chunks = std::move(chunks);
  r.chunked = true;
  r.trailers = std::move(trailers);
  return r;
}

Response respondWithTrailers(int status, std::string body, Headers trailers, Headers headers) {
  Response r = respond(status, std::move(headers), std::move(body));
  r.trailers = std::move(trailers);
  return r;
}

Response respondGenerated(int status, uint64_t bytes, Headers headers) {
  Response r = respond(status, std::move(headers));
  r.generated_body_bytes = bytes;
  return r;
}

namespace {

Headers grpcStatusTrailers(GrpcStatus status, const std::string& grpc_message) {
  Headers t{{"grpc-status", std::to_string(static_cast<int>(status))}};
  if (!grpc_message.empty()) {
    t.emplace_back("grpc-message", encodeGrpcMessageHeader(grpc_message));
  }
  return t;
}

}  // namespace

Response respondGrpcMessages(std::vector<std::string> messages, GrpcStatus status,
                             std::string grpc_message, Headers trailing_metadata) {
  Response r = respond(200, {{"content-type", "application/grpc"}});
  for (const auto& m : messages) {
    r.body += encodeGrpcMessage(m);
  }
  r.trailers = grpcStatusTrailers(status, grpc_message);
  r.trailers.insert(r.trailers.end(), trailing_metadata.begin(), trailing_metadata.end());
  return r;
}

Response respondGrpcTrailersOnly(GrpcStatus status, std::string grpc_message) {
  Response r = respond(200, {{"content-type", "application/grpc"}});
  const Headers t = grpcStatusTrailers(status, grpc_message);
  r.headers.insert(r.headers.end(), t.begin(), t.end());
  // A Trailers-Only response has no body; the empty Content-Length keeps HTTP/1.1 framing sane
  // and is skipped for HTTP/2 (see fake_upstream.cc).
  return r;
}

Response respondGrpc(GrpcStatus status, std::string message, std::string grpc_message) {
  if (status != GrpcStatus::Ok && message.empty()) {
    return respondGrpcTrailersOnly(status, std::move(grpc_message));
  }
  return respondGrpcMessages({std::move(message)}, status, std::move(grpc_message));
}

Response respondRaw(std::string bytes, bool close_after) {
  Response r;
  r.action = ResponseAction::Raw;
  r.raw = std::move(bytes);
  r.raw_close = close_after;
  return r;
}

Response hang() {
  Response r;
  r.action = ResponseAction::Hang;
  return r;
}

Response refuse() {
  Response r;
  r.action = ResponseAction::Refuse;
  r.h2_error_code = h2_error::kRefusedStream;
  return r;
}

Response resetBeforeHeaders(uint32_t h2_code) {
  Response r;
  r.action = ResponseAction::ResetBeforeHeaders;
  r.h2_error_code = h2_code;
  return r;
}

Response closeBeforeHeaders() {
  Response r;
  r.action = ResponseAction::CloseBeforeHeaders;
  return r;
}

Response goAway(uint32_t error_code) {
  Response r;
  r.action = ResponseAction::GoAwayUnprocessed;
  r.goaway_error_code = error_code;
  return r;
}

Response echoResponse(const ReceivedRequest& request) {
  Response r;
  r.status = 200;
  r.headers = {
      {"x-echo-method", request.method},
      {"x-echo-path", request.path},
      {"x-echo-authority", request.authority},
      {"x-echo-scheme", request.scheme},
      {"x-echo-protocol", protocolName(request.protocol)},
      {"x-echo-connection-id", std::to_string(request.connection_id)},
      {"x-echo-stream-id", std::to_string(request.stream_id)},
      {"x-echo-body-bytes", std::to_string(request.body_bytes)},
      {"x-upstream", request.upstream},
  };
  if (!request.upstream_name.empty()) {
    r.headers.emplace_back("x-upstream-name", request.upstream_name);
  }
  // Join repeated headers so the echo is one header per name, in first-seen order.
  std::vector<std::pair<std::string, std::string>> seen;
  for (const auto& [name, value] : request.headers) {
    const std::string key = "x-seen-" + toLower(name);
    auto it = std::find_if(seen.begin(), seen.end(), [&](const auto& s) { return s.first == key; });
    if (it == seen.end()) {
      seen.emplace_back(key, value);
    } else {
      it->second += ", " + value;
    }
  }
  r.headers.insert(r.headers.end(), seen.begin(), seen.end());
  if (request.method != "HEAD") {
    r.body = request.body;
  }
  return r;
}

Script& Script::nthRequest(size_t n, Response response) {
  std::lock_guard<std::mutex> lock(mu_);
  nth_.emplace_back(n, std::move(response));
  return *this;
}

Script& Script::forPath(std::string path, Response response) {
  return matching(
      [path = std::move(path)](const ReceivedRequest& r) {
        return r.path.substr(0, r.path.find('?')) == path;
      },
      std::move(response));
}

Script& Script::matching(std::function<bool(const ReceivedRequest&)> predicate, Response response) {
  return matching(
      std::move(predicate),
      Handler([response = std::move(response)](const ReceivedRequest&) { return response; }));
}

Script& Script::matching(std::function<bool(const ReceivedRequest&)> predicate, Handler handler) {
  std::lock_guard<std::mutex> lock(mu_);
  rules_.push_back(Rule{std::move(predicate), std::move(handler)});
  return *this;
}

Script& Script::otherwise(Response response) {
  return otherwise(
      Handler([response = std::move(response)](const ReceivedRequest&) { return response; }));
}

Script& Script::otherwise(Handler handler) {
  std::lock_guard<std::mutex> lock(mu_);
  otherwise_ = std::move(handler);
  return *this;
}

void Script::reset() {
  std::lock_guard<std::mutex> lock(mu_);
  counter_ = 0;
  nth_.clear();
  rules_.clear();
  otherwise_ = nullptr;
}

size_t Script::dispatched() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counter_;
}

Response Script::next(const ReceivedRequest& request) {
  Handler chosen;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const size_t n = ++counter_;
    for (const auto& [index, response] : nth_) {
      if (index == n) {
        return response;
      }
    }
    for (const auto& rule : rules_) {
      if (rule.predicate(request)) {
        chosen = rule.handler;
        break;
      }
    }
    if (!chosen) {
      chosen = otherwise_;
    }
  }
  // Handlers run unlocked so they may touch the script (or block briefly) without deadlock.
  return chosen ? chosen(request) : echoResponse(request);
}

}  // namespace bulwark::testing
