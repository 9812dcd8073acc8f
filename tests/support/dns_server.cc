#include "tests/support/dns_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

namespace bulwark::testing {
namespace {

constexpr uint16_t kTypeA = 1;
constexpr uint16_t kTypeAaaa = 28;
constexpr uint16_t kRcodeNxDomain = 3;
constexpr uint16_t kRcodeServFail = 2;
constexpr uint16_t kRcodeFormErr = 1;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

void put16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

void put32(std::string& out, uint32_t v) {
  put16(out, static_cast<uint16_t>(v >> 16));
  put16(out, static_cast<uint16_t>(v & 0xffff));
}

}  // namespace

DnsServer::DnsServer() {
  fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    return;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd_);
    fd_ = -1;
    return;
  }
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { run(); });
}

DnsServer::~DnsServer() {
  stop_.store(true);
  if (thread_.joinable()) {
    thread_.join();
  }
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

std::string DnsServer::address() const { return "127.0.0.1:" + std::to_string(port_); }

void DnsServer::setRecords(const std::string& name, std::vector<std::string> addresses,
                           uint32_t ttl_seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  if (addresses.empty()) {
    records_.erase(lower(name));
  } else {
    records_[lower(name)] = Entry{std::move(addresses), ttl_seconds};
  }
}

void DnsServer::run() {
  uint8_t buf[1500];
  while (!stop_.load()) {
    pollfd p{fd_, POLLIN, 0};
    // Bounded wait so the destructor's stop flag is seen promptly.
    if (::poll(&p, 1, 20) <= 0) {
      continue;
    }
    sockaddr_in peer{};
    socklen_t peer_len = sizeof(peer);
    ssize_t n = ::recvfrom(fd_, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&peer), &peer_len);
    if (n <= 0) {
      continue;
    }
    queries_.fetch_add(1);
    std::string reply = answer(buf, static_cast<size_t>(n));
    if (!reply.empty()) {
      ::sendto(fd_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&peer), peer_len);
    }
  }
}

std::string DnsServer::answer(const uint8_t* q, size_t len) {
  if (len < 12) {
    return {};
  }
  uint16_t id = static_cast<uint16_t>((q[0] << 8) | q[1]);
  uint16_t flags_in = static_cast<uint16_t>((q[2] << 8) | q[3]);
  uint16_t qdcount = static_cast<uint16_t>((q[4] << 8) | q[5]);
  // Parse the one question: labels, type, class.
  size_t pos = 12;
  std::string name;
  bool ok = qdcount == 1;
  while (ok && pos < len && q[pos] != 0) {
    uint8_t label = q[pos];
    if ((label & 0xc0) != 0 || pos + 1 + label > len) {
      ok = false;
      break;
    }
    if (!name.empty()) {
      name.push_back('.');
    }
    name.append(reinterpret_cast<const char*>(q + pos + 1), label);
    pos += 1 + label;
  }
  ok = ok && pos + 5 <= len;
  std::string out;
  put16(out, id);
  auto header = [&](uint16_t rcode, uint16_t ancount, bool with_question) {
    // QR, opcode 0, AA, RD copied, RA.
    put16(out, static_cast<uint16_t>(0x8000 | 0x0400 | (flags_in & 0x0100) | 0x0080 | rcode));
    put16(out, with_question ? 1 : 0);
    put16(out, ancount);
    put16(out, 0);
    put16(out, 0);
  };
  if (!ok) {
    header(kRcodeFormErr, 0, false);
    return out;
  }
  size_t question_end = pos + 5;
  uint16_t qtype = static_cast<uint16_t>((q[pos + 1] << 8) | q[pos + 2]);
  std::string question(reinterpret_cast<const char*>(q + 12), question_end - 12);
  if (failing_.load()) {
    header(kRcodeServFail, 0, true);
    out += question;
    return out;
  }
  Entry entry;
  bool found = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = records_.find(lower(name));
    if (it != records_.end()) {
      entry = it->second;
      found = true;
    }
  }
  if (!found) {
    header(kRcodeNxDomain, 0, true);
    out += question;
    return out;
  }
  std::string answers;
  uint16_t count = 0;
  for (const auto& a : entry.addresses) {
    bool v6 = a.find(':') != std::string::npos;
    if ((qtype == kTypeA && v6) || (qtype == kTypeAaaa && !v6) ||
        (qtype != kTypeA && qtype != kTypeAaaa)) {
      continue;
    }
    uint8_t raw[16];
    if (inet_pton(v6 ? AF_INET6 : AF_INET, a.c_str(), raw) != 1) {
      continue;
    }
    put16(answers, 0xc00c);  // name: pointer to the question
    put16(answers, qtype);
    put16(answers, 1);  // IN
    put32(answers, entry.ttl);
    put16(answers, v6 ? 16 : 4);
    answers.append(reinterpret_cast<const char*>(raw), v6 ? 16 : 4);
    ++count;
  }
  header(0, count, true);  // NOERROR, possibly without answers (name exists, other type)
  out += question;
  out += answers;
  return out;
}

}  // namespace bulwark::testing
