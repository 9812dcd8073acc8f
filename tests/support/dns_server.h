#pragma once

// A tiny authoritative DNS server on loopback UDP for DNS-discovery tests: answers A and AAAA
// questions from a table the test changes at will, NXDOMAIN for unknown names, and SERVFAIL for
// everything while failing. Runs on its own thread. Thread: any (the table is mutex-guarded).

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace bulwark::testing {

class DnsServer {
public:
  /** Binds 127.0.0.1:0 (UDP) and starts serving; check ok(). */
  DnsServer();
  ~DnsServer();
  DnsServer(const DnsServer&) = delete;
  DnsServer& operator=(const DnsServer&) = delete;

  bool ok() const { return fd_ >= 0; }
  uint16_t port() const { return port_; }
  /** "127.0.0.1:PORT", the form c-ares' ares_set_servers_ports_csv takes. */
  std::string address() const;

  /**
   * Sets the records of `name` (case-insensitive, no trailing dot): IPv4 literals become A
   * records, IPv6 literals AAAA records. An empty list removes the name (NXDOMAIN).
   */
  void setRecords(const std::string& name, std::vector<std::string> addresses,
                  uint32_t ttl_seconds = 30);
  /** While on, every query is answered SERVFAIL. */
  void setFailing(bool failing) { failing_.store(failing); }
  /** Queries answered so far. */
  uint64_t queries() const { return queries_.load(); }

private:
  struct Entry {
    std::vector<std::string> addresses;
    uint32_t ttl = 30;
  };
  void run();
  std::string answer(const uint8_t* query, size_t len);

  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> failing_{false};
  std::atomic<uint64_t> queries_{0};
  std::mutex mu_;
  std::map<std::string, Entry> records_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace bulwark::testing
