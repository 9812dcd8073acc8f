#include "proxy/upstream/dns_resolver.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <mutex>

#include <event2/event.h>
#include <spdlog/spdlog.h>

namespace bulwark::upstream {

/** One lookup in flight. Thread: main. */
struct DnsResolver::Query {
  DnsResolver* resolver;
  std::weak_ptr<bool> alive;
  Callback callback;
};

DnsResolver::DnsResolver(event::Dispatcher& dispatcher) : dispatcher_(dispatcher) {
  static std::once_flag init_once;
  static int init_status = ARES_SUCCESS;
  std::call_once(init_once, [] { init_status = ares_library_init(ARES_LIB_INIT_ALL); });
  if (init_status != ARES_SUCCESS) {
    spdlog::error("c-ares: library init failed: {}", ares_strerror(init_status));
    return;
  }
  timer_ = dispatcher_.createTimer([this] {
    ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    rearmTimer();
  });
  ares_options options{};
  options.sock_state_cb = &DnsResolver::onSocketState;
  options.sock_state_cb_data = this;
  options.timeout = 1000;  // ms per try (ARES_OPT_TIMEOUTMS)
  options.tries = 2;
  int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
  int status = ares_init_options(&channel_, &options, mask);
  if (status != ARES_SUCCESS) {
    spdlog::error("c-ares: init failed: {}", ares_strerror(status));
    channel_ = nullptr;
    return;
  }
  if (const char* servers = std::getenv(kServerEnv); servers != nullptr && *servers != '\0') {
    status = ares_set_servers_ports_csv(channel_, servers);
    if (status != ARES_SUCCESS) {
      spdlog::error("c-ares: {}={} rejected: {}", kServerEnv, servers, ares_strerror(status));
    } else {
      spdlog::info("DNS discovery uses resolver {} ({})", servers, kServerEnv);
    }
  }
}

DnsResolver::~DnsResolver() {
  *alive_ = false;
  if (channel_ != nullptr) {
    ares_destroy(channel_);  // runs pending callbacks with ARES_EDESTRUCTION
  }
  for (auto& [fd, ev] : events_) {
    event_free(ev);
  }
}

void DnsResolver::resolve(const std::string& name, Callback callback) {
  if (channel_ == nullptr) {
    dispatcher_.post(
        [callback = std::move(callback)] { callback(Status::error("c-ares unavailable")); });
    return;
  }
  auto* query = new Query{this, alive_, std::move(callback)};
  ares_addrinfo_hints hints{};
  hints.ai_family = AF_UNSPEC;  // A and AAAA
  hints.ai_flags = ARES_AI_NOSORT;
  ares_getaddrinfo(channel_, name.c_str(), nullptr, &hints, &DnsResolver::onAddrInfo, query);
  rearmTimer();
}

void DnsResolver::onAddrInfo(void* arg, int status, int, ares_addrinfo* result) {
  std::unique_ptr<Query> query(static_cast<Query*>(arg));
  if (status == ARES_EDESTRUCTION || query->alive.expired()) {
    if (result != nullptr) {
      ares_freeaddrinfo(result);
    }
    return;
  }
  Result<DnsAnswer> out = Status::error(ares_strerror(status));
  if (status == ARES_SUCCESS && result != nullptr) {
    DnsAnswer answer;
    int min_ttl = std::numeric_limits<int>::max();
    for (ares_addrinfo_node* node = result->nodes; node != nullptr; node = node->ai_next) {
      char buf[INET6_ADDRSTRLEN] = {};
      if (node->ai_family == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(node->ai_addr)->sin_addr, buf,
                  sizeof(buf));
      } else if (node->ai_family == AF_INET6) {
        inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(node->ai_addr)->sin6_addr, buf,
                  sizeof(buf));
      } else {
        continue;
      }
      std::string ip(buf);
      if (std::find(answer.addresses.begin(), answer.addresses.end(), ip) ==
          answer.addresses.end()) {
        answer.addresses.push_back(ip);
      }
      min_ttl = std::min(min_ttl, std::max(0, node->ai_ttl));
    }
    answer.ttl = std::chrono::seconds(min_ttl == std::numeric_limits<int>::max() ? 0 : min_ttl);
    if (answer.addresses.empty()) {
      out = Status::error("no addresses");
    } else {
      out = std::move(answer);
    }
  }
  if (result != nullptr) {
    ares_freeaddrinfo(result);
  }
  // Callbacks may start new lookups; c-ares allows that from its callbacks.
  query->callback(std::move(out));
}

void DnsResolver::onSocketState(void* data, ares_socket_t fd, int readable, int writable) {
  auto* self = static_cast<DnsResolver*>(data);
  auto it = self->events_.find(fd);
  if (it != self->events_.end()) {
    event_free(it->second);
    self->events_.erase(it);
  }
  if (!readable && !writable) {
    return;
  }
  short what = EV_PERSIST;
  if (readable) {
    what |= EV_READ;
  }
  if (writable) {
    what |= EV_WRITE;
  }
  ::event* ev = event_new(self->dispatcher_.base(), fd, what, &DnsResolver::onSocketEvent, self);
  event_add(ev, nullptr);
  self->events_[fd] = ev;
}

void DnsResolver::onSocketEvent(evutil_socket_t fd, short what, void* arg) {
  auto* self = static_cast<DnsResolver*>(arg);
  std::weak_ptr<bool> alive = self->alive_;
  ares_process_fd(self->channel_, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
                  (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
  if (alive.expired()) {
    return;
  }
  self->rearmTimer();
}

void DnsResolver::rearmTimer() {
  if (channel_ == nullptr) {
    return;
  }
  timeval max_wait{1, 0};
  timeval tv{};
  timeval* next = ares_timeout(channel_, &max_wait, &tv);
  if (events_.empty()) {
    // Nothing in flight: no timer needed.
    timer_->disableTimer();
    return;
  }
  timer_->enableTimer(std::chrono::seconds(next->tv_sec) +
                      std::chrono::microseconds(next->tv_usec));
}

}  // namespace bulwark::upstream
