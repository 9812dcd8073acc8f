#include "bench/loadgen/connection.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <strings.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fmt/format.h>

namespace bulwark::bench {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool hasHeader(const HeaderList& headers, std::string_view name) {
  return std::any_of(headers.begin(), headers.end(), [&](const auto& h) {
    return h.first.size() == name.size() &&
           strncasecmp(h.first.data(), name.data(), name.size()) == 0;
  });
}

bool isConnectionSpecific(const std::string& lower_name) {
  return lower_name == "connection" || lower_name == "keep-alive" ||
         lower_name == "proxy-connection" || lower_name == "transfer-encoding" ||
         lower_name == "upgrade" || lower_name == "host";
}

std::string grpcFrame(std::string_view message) {
  std::string out;
  out.reserve(5 + message.size());
  const auto n = static_cast<uint32_t>(message.size());
  out.push_back('\0');
  out.push_back(static_cast<char>((n >> 24) & 0xff));
  out.push_back(static_cast<char>((n >> 16) & 0xff));
  out.push_back(static_cast<char>((n >> 8) & 0xff));
  out.push_back(static_cast<char>(n & 0xff));
  out.append(message);
  return out;
}

}  // namespace

PreparedRequest prepareRequest(const RequestTemplate& t, const TargetAddress& target,
                               LoadProtocol protocol) {
  PreparedRequest p;
  // A keyed request is safe to resend: the server answers a repeat of the key from its record.
  p.idempotent = t.method == "GET" || t.method == "HEAD" || t.method == "OPTIONS" ||
                 t.method == "PUT" || t.method == "DELETE" || t.method == "TRACE" ||
                 hasHeader(t.headers, "idempotency-key");
  p.per_request = std::any_of(t.headers.begin(), t.headers.end(), [](const auto& h) {
    return h.second.find(kSequencePlaceholder) != std::string::npos;
  });
  if (protocol == LoadProtocol::Http1) {
    p.head = t.method == "HEAD";
    std::string out = fmt::format("{} {} HTTP/1.1\r\n", t.method, t.path);
    if (!hasHeader(t.headers, "host")) {
      out += fmt::format("Host: {}\r\n", target.text);
    }
    for (const auto& [name, value] : t.headers) {
      out += fmt::format("{}: {}\r\n", name, value);
    }
    const bool wants_length =
        !t.body.empty() || t.method == "POST" || t.method == "PUT" || t.method == "PATCH";
    if (wants_length && !hasHeader(t.headers, "content-length") &&
        !hasHeader(t.headers, "transfer-encoding")) {
      out += fmt::format("Content-Length: {}\r\n", t.body.size());
    }
    out += "\r\n";
    out += t.body;
    p.http1_bytes = std::move(out);
    return p;
  }
  p.grpc = protocol == LoadProtocol::Grpc;
  std::string authority = target.text;
  for (const auto& [name, value] : t.headers) {
    if (lower(name) == "host") {
      authority = value;
    }
  }
  const std::string path = p.grpc && !t.grpc_method.empty() ? t.grpc_method : t.path;
  p.h2_headers = {
      {":method", t.method}, {":scheme", "http"}, {":authority", authority}, {":path", path}};
  if (p.grpc) {
    if (!hasHeader(t.headers, "content-type")) {
      p.h2_headers.emplace_back("content-type", "application/grpc");
    }
    if (!hasHeader(t.headers, "te")) {
      p.h2_headers.emplace_back("te", "trailers");
    }
    p.h2_body = grpcFrame(t.body);
  } else {
    p.h2_body = t.body;
    if (!p.h2_body.empty() && !hasHeader(t.headers, "content-length")) {
      p.h2_headers.emplace_back("content-length", std::to_string(p.h2_body.size()));
    }
  }
  for (const auto& [name, value] : t.headers) {
    std::string n = lower(name);
    if (!isConnectionSpecific(n) || (n == "te" && value == "trailers")) {
      p.h2_headers.emplace_back(std::move(n), value);
    }
  }
  return p;
}

namespace {

void replaceAll(std::string& s, size_t from, size_t until, std::string_view what,
                std::string_view with) {
  for (size_t at = s.find(what, from); at != std::string::npos && at + what.size() <= until;
       at = s.find(what, at + with.size())) {
    s.replace(at, what.size(), with);
    until = until + with.size() - what.size();
  }
}

}  // namespace

PreparedRequest withSequence(const PreparedRequest& prepared, uint64_t sequence) {
  PreparedRequest p = prepared;
  p.per_request = false;
  p.per_request_copy = true;
  const std::string number = std::to_string(sequence);
  if (!p.http1_bytes.empty()) {
    // Header section only: the body (and its Content-Length) stays as prepared.
    const size_t end = p.http1_bytes.find("\r\n\r\n");
    replaceAll(p.http1_bytes, 0, end == std::string::npos ? p.http1_bytes.size() : end,
               kSequencePlaceholder, number);
  }
  for (auto& header : p.h2_headers) {
    replaceAll(header.second, 0, header.second.size(), kSequencePlaceholder, number);
  }
  return p;
}

ClientConnection::ClientConnection(event_base* base, const sockaddr_storage& address,
                                   socklen_t address_len, ConnectionOwner& owner, size_t target)
    : base_(base), address_(address), address_len_(address_len), owner_(owner), target_(target) {
  deliver_ev_ = event_new(base_, -1, 0, &ClientConnection::onDeliverEvent, this);
}

ClientConnection::~ClientConnection() {
  if (deliver_ev_ != nullptr) {
    event_free(deliver_ev_);
  }
}

bufferevent* ClientConnection::startConnect() {
  const int fd = ::socket(address_.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return nullptr;
  }
  const int one = 1;
  // Requests are small and latency is the measurement: never wait for Nagle.
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  bufferevent* bev = bufferevent_socket_new(base_, fd, BEV_OPT_CLOSE_ON_FREE);
  if (bev == nullptr) {
    ::close(fd);
    return nullptr;
  }
  if (bufferevent_socket_connect(bev, reinterpret_cast<const sockaddr*>(&address_),
                                 static_cast<int>(address_len_)) != 0) {
    bufferevent_free(bev);
    return nullptr;
  }
  return bev;
}

void ClientConnection::complete(PendingRequest& request, Outcome outcome) {
  completions_.emplace_back(&request, std::move(outcome));
  capacity_changed_ = true;
}

void ClientConnection::deliver() {
  // Swap first: the owner may send on this connection, which may queue new completions.
  auto completions = std::move(completions_);
  completions_.clear();
  const bool capacity = capacity_changed_ || !completions.empty();
  capacity_changed_ = false;
  for (auto& [request, outcome] : completions) {
    request->connection = nullptr;
    owner_.onFinished(*request, outcome);
  }
  if (capacity) {
    owner_.onCapacity(target_);
  }
}

void ClientConnection::forget(PendingRequest& request) {
  std::erase_if(completions_, [&](const auto& c) { return c.first == &request; });
  request.connection = nullptr;
}

void ClientConnection::deliverSoon() {
  capacity_changed_ = true;
  event_active(deliver_ev_, EV_TIMEOUT, 0);
}

void ClientConnection::onDeliverEvent(int /*fd*/, short /*what*/, void* arg) {
  static_cast<ClientConnection*>(arg)->deliver();
}

}  // namespace bulwark::bench
