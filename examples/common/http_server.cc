#include "examples/common/http_server.h"

#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <random>
#include <vector>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "examples/common/replica_id.h"

namespace bulwark::examples {
namespace {

// A slow body is sent in slices this far apart.
constexpr std::chrono::milliseconds kSlowBodyTick{50};

timeval toTimeval(std::chrono::microseconds d) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(d.count() / 1'000'000);
  tv.tv_usec = static_cast<suseconds_t>(d.count() % 1'000'000);
  return tv;
}

bool hasHeader(const HeaderList& headers, std::string_view name) {
  return std::any_of(headers.begin(), headers.end(), [name](const auto& h) {
    return h.first.size() == name.size() &&
           std::equal(h.first.begin(), h.first.end(), name.begin(),
                      [](char a, char b) { return std::tolower(a) == std::tolower(b); });
  });
}

std::string errorBody(int status) {
  return "{\"error\":\"injected fault\",\"status\":" + std::to_string(status) + "}\n";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// HttpExchange

HttpExchange::HttpExchange(HttpServer& server, evhttp_request* req, FaultDecision decision)
    : server_(server),
      req_(req),
      evcon_(evhttp_request_get_connection(req)),
      decision_(std::move(decision)),
      method_(methodName(req)),
      body_(requestBody(req)) {
  if (!splitUri(req, path_, query_)) {
    path_.clear();
  }
}

HttpExchange::~HttpExchange() {
  cancelTimer();
  if (close_watch_ != nullptr) {
    event_free(close_watch_);
  }
}

std::optional<std::string> HttpExchange::queryParam(const std::string& name) const {
  return examples::queryParam(query_, name);
}

std::optional<std::string> HttpExchange::header(const char* name) const {
  if (req_ == nullptr) {
    return std::nullopt;
  }
  return requestHeader(req_, name);
}

bool HttpExchange::open() const {
  return req_ != nullptr && (state_ == State::Waiting || state_ == State::Hung);
}

void HttpExchange::cancelTimer() {
  if (timer_ != nullptr) {
    event_free(timer_);
    timer_ = nullptr;
  }
}

void HttpExchange::start() {
  using Action = FaultDecision::Action;
  if (decision_.action == Action::Crash) {
    crashNow();
  }
  if (decision_.action == Action::Hang) {
    // Never answered: the client (or bulwark) has to time out. Dropped when the client leaves
    // and on drain.
    state_ = State::Hung;
    if (bufferevent* bev = evhttp_connection_get_bufferevent(evcon_)) {
      close_watch_ = event_new(server_.base_, bufferevent_getfd(bev), EV_READ | EV_PERSIST,
                               &HttpExchange::onHungSocket, this);
      event_add(close_watch_, nullptr);
    }
    return;
  }
  if (decision_.extra_latency.count() > 0) {
    timer_ = evtimer_new(server_.base_, &HttpExchange::onLatencyTimer, this);
    timeval tv = toTimeval(decision_.extra_latency);
    evtimer_add(timer_, &tv);
    return;
  }
  proceed();
}

void HttpExchange::onHungSocket(int fd, short, void* arg) {
  auto* self = static_cast<HttpExchange*>(arg);
  char byte;
  ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    return;
  }
  if (n > 0) {
    // The client sent more (a pipelined request); it stays hung, stop watching.
    event_del(self->close_watch_);
    return;
  }
  // EOF or error: the client is gone. Freeing the connection runs onConnectionClose(), which
  // drops the exchange; keep it alive until this callback returns.
  auto it = self->server_.live_.find(self->evcon_);
  if (it == self->server_.live_.end()) {
    return;
  }
  std::shared_ptr<HttpExchange> keep = it->second;
  evhttp_connection_free(self->evcon_);
}

void HttpExchange::onLatencyTimer(int, short, void* arg) {
  auto* self = static_cast<HttpExchange*>(arg);
  self->cancelTimer();
  self->proceed();
}

void HttpExchange::proceed() {
  if (decision_.action == FaultDecision::Action::Error) {
    HttpResponse response;
    response.status = decision_.http_status;
    response.body = errorBody(decision_.http_status);
    if (decision_.retry_after) {
      response.headers.emplace_back("Retry-After", *decision_.retry_after);
    }
    // An injected error is an error, not a reset: answer it whole, at normal speed.
    decision_.action = FaultDecision::Action::None;
    decision_.slow_body_bytes_per_sec = 0;
    reply(std::move(response));
    return;
  }
  // The handler may keep the exchange beyond this call; live_ keeps it alive meanwhile.
  auto it = server_.live_.find(evcon_);
  if (it == server_.live_.end() || it->second.get() != this) {
    return;
  }
  std::shared_ptr<HttpExchange> self = it->second;
  server_.handler_(self);
}

void HttpExchange::reply(HttpResponse response) {
  if (!open() || state_ == State::Hung) {
    return;
  }
  if (!hasHeader(response.headers, "Content-Type")) {
    response.headers.emplace_back("Content-Type", "application/json");
  }
  response.headers.emplace_back(kReplicaIdHeader, server_.replica_id_);
  if (server_.draining_) {
    response.headers.emplace_back("Connection", "close");
  }
  evhttp_request_set_on_complete_cb(req_, &HttpExchange::onComplete, this);

  const bool reset = decision_.action == FaultDecision::Action::Reset;
  const bool slow = decision_.slow_body_bytes_per_sec > 0 && !response.body.empty();
  if (!reset && !slow) {
    state_ = State::Sent;
    sendReply(req_, response.status, response.body, response.headers);
    return;
  }
  // Declare the full length, then send less (reset) or send it slowly: either way the client
  // knows exactly how much is missing.
  evkeyvalq* out = evhttp_request_get_output_headers(req_);
  for (const auto& [name, value] : response.headers) {
    evhttp_add_header(out, name.c_str(), value.c_str());
  }
  evhttp_add_header(out, "Content-Length", std::to_string(response.body.size()).c_str());
  state_ = State::Streaming;
  evhttp_send_reply_start(req_, response.status, reasonPhrase(response.status));
  if (reset) {
    evbuffer* part = evbuffer_new();
    evbuffer_add(part, response.body.data(), response.body.size() / 2);
    // Reset only once the first half is on the wire, so the client sees a response cut short.
    evhttp_send_reply_chunk_with_cb(req_, part, &HttpExchange::onPartWritten, this);
    evbuffer_free(part);
    return;
  }
  pending_body_ = std::move(response.body);
  pending_offset_ = 0;
  timer_ = event_new(server_.base_, -1, EV_PERSIST, &HttpExchange::onSlowBodyTimer, this);
  timeval tv = toTimeval(kSlowBodyTick);
  evtimer_add(timer_, &tv);
  sendSlowBodyPart();
}

void HttpExchange::onSlowBodyTimer(int, short, void* arg) {
  static_cast<HttpExchange*>(arg)->sendSlowBodyPart();
}

void HttpExchange::sendSlowBodyPart() {
  if (req_ == nullptr) {
    return;
  }
  const auto per_tick =
      std::max<int64_t>(1, decision_.slow_body_bytes_per_sec * kSlowBodyTick.count() / 1000);
  const size_t n =
      std::min<size_t>(static_cast<size_t>(per_tick), pending_body_.size() - pending_offset_);
  evbuffer* part = evbuffer_new();
  evbuffer_add(part, pending_body_.data() + pending_offset_, n);
  evhttp_send_reply_chunk(req_, part);
  evbuffer_free(part);
  pending_offset_ += n;
  if (pending_offset_ >= pending_body_.size()) {
    cancelTimer();
    state_ = State::Sent;
    evhttp_send_reply_end(req_);  // onComplete follows once written
  }
}

void HttpExchange::onPartWritten(evhttp_connection*, void* arg) {
  auto* self = static_cast<HttpExchange*>(arg);
  // Leave libevent's write callback before freeing the connection it belongs to.
  self->cancelTimer();
  self->timer_ = evtimer_new(self->server_.base_, &HttpExchange::onResetNow, self);
  timeval zero{};
  evtimer_add(self->timer_, &zero);
}

void HttpExchange::onResetNow(int, short, void* arg) {
  static_cast<HttpExchange*>(arg)->resetConnection();
}

void HttpExchange::resetConnection() {
  cancelTimer();
  if (req_ == nullptr) {
    return;
  }
  // SO_LINGER 0 turns the close into a TCP RST instead of an orderly FIN.
  if (bufferevent* bev = evhttp_connection_get_bufferevent(evcon_)) {
    linger lg{1, 0};
    setsockopt(bufferevent_getfd(bev), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  }
  state_ = State::Gone;
  req_ = nullptr;  // owned and freed by the connection below
  evhttp_connection* evcon = evcon_;
  auto it = server_.live_.find(evcon);
  std::shared_ptr<HttpExchange> keep = it != server_.live_.end() ? it->second : nullptr;
  server_.forget(this);
  evhttp_connection_free(evcon);
}

void HttpExchange::onComplete(evhttp_request*, void* arg) {
  auto* self = static_cast<HttpExchange*>(arg);
  self->req_ = nullptr;  // libevent frees it after this callback
  self->state_ = State::Sent;
  self->server_.forget(self);
}

void HttpExchange::connectionClosed() {
  cancelTimer();
  if (close_watch_ != nullptr) {
    event_free(close_watch_);
    close_watch_ = nullptr;
  }
  if (req_ != nullptr && evhttp_request_get_connection(req_) == nullptr) {
    // libevent detached the unanswered request from the dead connection; it is ours to free.
    evhttp_request_free(req_);
  }
  req_ = nullptr;
  state_ = State::Gone;
}

// ---------------------------------------------------------------------------------------------
// HttpServer

HttpServer::HttpServer(event_base* base, FaultInjector& faults, HttpServerOptions options,
                       Handler handler)
    : base_(base),
      faults_(faults),
      options_(std::move(options)),
      handler_(std::move(handler)),
      random_(options_.seed != 0 ? options_.seed : std::random_device{}()) {}

Result<std::unique_ptr<HttpServer>> HttpServer::create(event_base* base, FaultInjector& faults,
                                                       HttpServerOptions options, Handler handler) {
  std::unique_ptr<HttpServer> server(
      new HttpServer(base, faults, std::move(options), std::move(handler)));
  server->http_ = evhttp_new(base);
  if (server->http_ == nullptr) {
    return Status::error("evhttp_new failed");
  }
  evhttp_set_allowed_methods(server->http_, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                                EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
  evhttp_set_max_body_size(server->http_, static_cast<ev_ssize_t>(server->options_.max_body_bytes));
  evhttp_set_gencb(server->http_, &HttpServer::onRequest, server.get());
  auto port = bindLoopback(server->http_, server->options_.port, &server->listener_);
  if (!port) {
    return port.status();
  }
  server->port_ = *port;
  server->replica_id_ = resolveReplicaId(server->options_.replica_id, server->port_);
  return server;
}

HttpServer::~HttpServer() {
  for (auto& [evcon, exchange] : live_) {
    exchange->connectionClosed();
  }
  live_.clear();
  if (drain_timer_ != nullptr) {
    event_free(drain_timer_);
  }
  if (http_ != nullptr) {
    evhttp_free(http_);
  }
}

size_t HttpServer::inflight() const {
  return static_cast<size_t>(std::count_if(live_.begin(), live_.end(), [](const auto& entry) {
    return entry.second->state_ != HttpExchange::State::Hung;
  }));
}

void HttpServer::onRequest(evhttp_request* req, void* arg) {
  static_cast<HttpServer*>(arg)->handleRequest(req);
}

void HttpServer::handleRequest(evhttp_request* req) {
  evhttp_connection* evcon = evhttp_request_get_connection(req);
  auto exchange = std::make_shared<HttpExchange>(*this, req, faults_.decide(random_));
  live_[evcon] = exchange;
  evhttp_connection_set_closecb(evcon, &HttpServer::onConnectionClose, this);
  exchange->start();
}

void HttpServer::onConnectionClose(evhttp_connection* evcon, void* arg) {
  auto* self = static_cast<HttpServer*>(arg);
  auto it = self->live_.find(evcon);
  if (it == self->live_.end()) {
    return;
  }
  std::shared_ptr<HttpExchange> exchange = it->second;
  self->live_.erase(it);
  exchange->connectionClosed();
  self->maybeFinishDrain();
}

void HttpServer::forget(HttpExchange* exchange) {
  auto it = live_.find(exchange->evcon_);
  if (it != live_.end() && it->second.get() == exchange) {
    live_.erase(it);
  }
  maybeFinishDrain();
}

void HttpServer::drain(std::function<void()> done) {
  if (draining_) {
    return;
  }
  draining_ = true;
  drain_done_ = std::move(done);
  if (listener_ != nullptr) {
    evhttp_del_accept_socket(http_, listener_);
    listener_ = nullptr;
  }
  std::vector<evhttp_connection*> hung;
  for (const auto& [evcon, exchange] : live_) {
    if (exchange->state_ == HttpExchange::State::Hung) {
      hung.push_back(evcon);
    }
  }
  for (evhttp_connection* evcon : hung) {
    evhttp_connection_free(evcon);  // closecb forgets them
  }
  drain_timer_ = evtimer_new(base_, &HttpServer::onDrainDeadline, this);
  timeval tv = toTimeval(options_.drain_timeout);
  evtimer_add(drain_timer_, &tv);
  maybeFinishDrain();
}

void HttpServer::onDrainDeadline(int, short, void* arg) {
  auto* self = static_cast<HttpServer*>(arg);
  if (self->drain_done_) {
    auto done = std::move(self->drain_done_);
    self->drain_done_ = nullptr;
    done();
  }
}

void HttpServer::maybeFinishDrain() {
  if (!draining_ || !drain_done_ || inflight() > 0) {
    return;
  }
  auto done = std::move(drain_done_);
  drain_done_ = nullptr;
  done();
}

namespace {

struct SignalContext {
  event_base* base;
  HttpServer* server;
  std::function<void()> on_signal;
  bool signalled = false;
};

void onStopSignal(int, short, void* arg) {
  auto* ctx = static_cast<SignalContext*>(arg);
  if (ctx->signalled) {
    return;
  }
  ctx->signalled = true;
  if (ctx->on_signal) {
    ctx->on_signal();
  }
  event_base* base = ctx->base;
  ctx->server->drain([base] { event_base_loopexit(base, nullptr); });
}

}  // namespace

int runUntilSignal(event_base* base, HttpServer& server, std::function<void()> on_signal) {
  SignalContext ctx{base, &server, std::move(on_signal)};
  event* term = evsignal_new(base, SIGTERM, &onStopSignal, &ctx);
  event* intr = evsignal_new(base, SIGINT, &onStopSignal, &ctx);
  evsignal_add(term, nullptr);
  evsignal_add(intr, nullptr);
  signal(SIGPIPE, SIG_IGN);
  event_base_dispatch(base);
  event_free(term);
  event_free(intr);
  return 0;
}

}  // namespace bulwark::examples
