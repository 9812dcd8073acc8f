#pragma once

// host:port parsing for listener, admin and endpoint addresses. Thread: any (pure functions).

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace bulwark::config {

struct HostPort {
  std::string host;  // without brackets for IPv6
  uint16_t port = 0;
  enum class Kind { Ipv4, Ipv6, Name } kind = Kind::Name;

  /** 0.0.0.0 or :: */
  bool isWildcard() const;
};

/**
 * Parses "1.2.3.4:80", "[::1]:80" or "name.example:80". Port 0 is accepted (callers that need
 * a real port check it); an IPv6 literal must be bracketed.
 */
Result<HostPort> parseHostPort(std::string_view text);

}  // namespace bulwark::config
