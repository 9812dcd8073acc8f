#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <ares.h>

#include "common/result.h"
#include "proxy/event/dispatcher.h"

struct event;

namespace bulwark::upstream {

/** One successful lookup: the addresses (numeric IPv4 / IPv6, no port) and the smallest TTL. */
struct DnsAnswer {
  std::vector<std::string> addresses;
  std::chrono::seconds ttl{0};
};

/**
 * Asynchronous A + AAAA lookups with c-ares, driven by the main event loop (c-ares' sockets are
 * watched with libevent events, its timeouts with a timer), so resolution never blocks a thread.
 *
 * The servers come from /etc/resolv.conf, or from the environment variable BULWARK_DNS_SERVER
 * ("127.0.0.1:5353", several comma-separated) read at construction: the integration tests
 * point bulwark at a DNS server of their own on loopback that way.
 * Thread: main (the owning dispatcher's thread).
 */
class DnsResolver {
public:
  using Callback = std::function<void(Result<DnsAnswer>)>;

  /** The environment variable naming resolver addresses (host:port[,host:port...]). */
  static constexpr const char* kServerEnv = "BULWARK_DNS_SERVER";

  explicit DnsResolver(event::Dispatcher& dispatcher);
  ~DnsResolver();
  DnsResolver(const DnsResolver&) = delete;
  DnsResolver& operator=(const DnsResolver&) = delete;

  /** False when c-ares could not be initialised (then resolve() fails every lookup). */
  bool ok() const { return channel_ != nullptr; }

  /**
   * Looks `name` up (A and AAAA). `callback` runs on the main thread, later (never inline),
   * unless the resolver is destroyed first (then it never runs).
   */
  void resolve(const std::string& name, Callback callback);

private:
  struct Query;
  static void onSocketState(void* data, ares_socket_t fd, int readable, int writable);
  static void onSocketEvent(evutil_socket_t fd, short what, void* arg);
  static void onAddrInfo(void* arg, int status, int timeouts, ares_addrinfo* result);
  void rearmTimer();

  event::Dispatcher& dispatcher_;
  ares_channel channel_ = nullptr;
  std::map<ares_socket_t, ::event*> events_;
  event::TimerPtr timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace bulwark::upstream
