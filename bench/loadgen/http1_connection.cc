#include "bench/loadgen/http1_connection.h"

#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

namespace bulwark::bench {
namespace {

Http1Connection& self(llhttp_t* parser) { return *static_cast<Http1Connection*>(parser->data); }

}  // namespace

Http1Connection::~Http1Connection() { shutdown(); }

bool Http1Connection::open() {
  if (bev_ != nullptr) {
    return true;
  }
  open_ = false;
  bev_ = startConnect();
  if (bev_ == nullptr) {
    owner_.onConnectResult(false);
    return false;
  }
  bufferevent_setcb(bev_, &Http1Connection::onRead, nullptr, &Http1Connection::onEvent, this);
  bufferevent_enable(bev_, EV_READ | EV_WRITE);
  answers_on_socket_ = 0;
  resetParser();
  return true;
}

void Http1Connection::resetParser() {
  llhttp_settings_init(&settings_);
  settings_.on_message_begin = &Http1Connection::onMessageBegin;
  settings_.on_header_field = &Http1Connection::onHeaderField;
  settings_.on_header_value = &Http1Connection::onHeaderValue;
  settings_.on_header_value_complete = &Http1Connection::onHeaderValueComplete;
  settings_.on_headers_complete = &Http1Connection::onHeadersComplete;
  settings_.on_message_complete = &Http1Connection::onMessageComplete;
  llhttp_init(&parser_, HTTP_RESPONSE, &settings_);
  parser_.data = this;
}

void Http1Connection::connect() { open(); }

void Http1Connection::send(PendingRequest& request, const PreparedRequest& prepared) {
  current_ = &request;
  current_head_ = prepared.head;
  current_idempotent_ = prepared.idempotent;
  current_bytes_ = 0;
  if (!open()) {
    // The owner is on the stack (it called send): report from the loop instead.
    current_ = nullptr;
    complete(request, failedOutcome(error_kind::kConnect));
    deliverSoon();
    return;
  }
  // Written before the handshake finishes: the bufferevent flushes it once connected.
  bufferevent_write(bev_, prepared.http1_bytes.data(), prepared.http1_bytes.size());
}

void Http1Connection::cancel(PendingRequest& request) {
  forget(request);
  if (current_ == &request) {
    current_ = nullptr;
    // The answer may still come: only a new connection is known to carry no stale response.
    teardown(nullptr);
  }
}

void Http1Connection::shutdown() {
  current_ = nullptr;
  teardown(nullptr);
}

void Http1Connection::teardown(const char* kind) {
  if (bev_ != nullptr) {
    bufferevent_free(bev_);
    bev_ = nullptr;
  }
  open_ = false;
  if (current_ != nullptr && kind != nullptr) {
    PendingRequest* request = current_;
    current_ = nullptr;
    complete(*request, failedOutcome(kind));
  }
  current_ = nullptr;
}

void Http1Connection::onEvent(bufferevent* /*bev*/, short what, void* arg) {
  auto& c = *static_cast<Http1Connection*>(arg);
  if ((what & BEV_EVENT_CONNECTED) != 0) {
    c.open_ = true;
    c.owner_.onConnectResult(true);
    return;
  }
  if ((what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) == 0) {
    return;
  }
  if (!c.open_) {
    c.owner_.onConnectResult(false);
    c.teardown(error_kind::kConnect);
    c.deliver();
    return;
  }
  // Bytes may still sit in the input buffer (EOF right after the response).
  c.readAvailable();
  if (c.bev_ == nullptr) {
    c.deliver();
    return;
  }
  const bool had_request = c.current_ != nullptr;
  if (had_request && llhttp_finish(&c.parser_) == HPE_OK && c.message_done_) {
    // Close-delimited body: the close completed it.
    c.message_done_ = false;
    PendingRequest* request = c.current_;
    c.current_ = nullptr;
    c.complete(*request, httpOutcome(c.status_, c.degraded_));
  }
  if (c.current_ != nullptr && c.current_bytes_ == 0 && c.answers_on_socket_ > 0 &&
      c.current_idempotent_) {
    // The server closed a reused idle connection as the request went out (keep-alive race).
    PendingRequest* request = c.current_;
    c.current_ = nullptr;
    Outcome outcome = failedOutcome(error_kind::kReset);
    outcome.unprocessed = true;
    c.complete(*request, std::move(outcome));
  }
  c.teardown(error_kind::kReset);
  c.deliver();
}

void Http1Connection::onRead(bufferevent* /*bev*/, void* arg) {
  auto& c = *static_cast<Http1Connection*>(arg);
  c.readAvailable();
  c.deliver();
}

void Http1Connection::readAvailable() {
  if (bev_ == nullptr) {
    return;
  }
  evbuffer* input = bufferevent_get_input(bev_);
  while (evbuffer_get_length(input) > 0 && bev_ != nullptr) {
    const auto length = static_cast<size_t>(evbuffer_get_contiguous_space(input));
    const char* data =
        reinterpret_cast<const char*>(evbuffer_pullup(input, static_cast<ev_ssize_t>(length)));
    if (current_ == nullptr) {
      // Bytes nobody asked for (or the tail of a cancelled answer): the stream is unusable.
      teardown(nullptr);
      return;
    }
    current_bytes_ += length;
    const llhttp_errno_t err = llhttp_execute(&parser_, data, length);
    size_t consumed = length;
    if (err == HPE_PAUSED) {
      consumed = static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
      llhttp_resume(&parser_);
    } else if (err != HPE_OK) {
      evbuffer_drain(input, length);
      teardown(error_kind::kProtocol);
      return;
    }
    evbuffer_drain(input, consumed);
    if (message_done_) {
      message_done_ = false;
      ++answers_on_socket_;
      PendingRequest* request = current_;
      current_ = nullptr;
      complete(*request, httpOutcome(status_, degraded_));
      if (!keep_alive_) {
        teardown(nullptr);
        return;
      }
    }
  }
}

int Http1Connection::onMessageBegin(llhttp_t* parser) {
  auto& c = self(parser);
  c.status_ = 0;
  c.degraded_ = false;
  c.informational_ = false;
  c.header_field_.clear();
  c.header_value_.clear();
  c.in_value_ = false;
  return 0;
}

int Http1Connection::onHeaderField(llhttp_t* parser, const char* at, size_t length) {
  auto& c = self(parser);
  if (c.in_value_) {
    c.header_field_.clear();
    c.in_value_ = false;
  }
  c.header_field_.append(at, length);
  return 0;
}

int Http1Connection::onHeaderValue(llhttp_t* parser, const char* at, size_t length) {
  auto& c = self(parser);
  if (!c.in_value_) {
    c.header_value_.clear();
    c.in_value_ = true;
  }
  c.header_value_.append(at, length);
  return 0;
}

int Http1Connection::onHeaderValueComplete(llhttp_t* parser) {
  auto& c = self(parser);
  if (strcasecmp(c.header_field_.c_str(), "x-bulwark-degraded") == 0 &&
      strcasecmp(c.header_value_.c_str(), "true") == 0) {
    c.degraded_ = true;
  }
  c.header_field_.clear();
  c.in_value_ = false;
  return 0;
}

int Http1Connection::onHeadersComplete(llhttp_t* parser) {
  auto& c = self(parser);
  c.status_ = parser->status_code;
  c.informational_ = c.status_ >= 100 && c.status_ < 200 && c.status_ != 101;
  // 1 = "no body": a HEAD answer's Content-Length describes a body that is not sent.
  return c.current_head_ && !c.informational_ ? 1 : 0;
}

int Http1Connection::onMessageComplete(llhttp_t* parser) {
  auto& c = self(parser);
  if (c.informational_) {
    return 0;  // 100 Continue and friends: the real answer follows.
  }
  c.message_done_ = true;
  c.keep_alive_ = llhttp_should_keep_alive(parser) != 0;
  // Stop after one answer: anything behind it was not asked for.
  return HPE_PAUSED;
}

}  // namespace bulwark::bench
