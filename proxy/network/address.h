#pragma once

#include <string_view>

namespace bulwark::network {

/**
 * The IP part of a peer address as the sockets print it: "1.2.3.4:80" -> "1.2.3.4",
 * "[::1]:80" -> "::1"; a bare address ("::1", "1.2.3.4") is returned as it is.
 */
inline std::string_view addressIp(std::string_view address) {
  if (!address.empty() && address.front() == '[') {
    const size_t close = address.find(']');
    return close == std::string_view::npos ? address : address.substr(1, close - 1);
  }
  const size_t colon = address.rfind(':');
  // One colon: "ip:port". Several without brackets: a bare IPv6 address.
  if (colon != std::string_view::npos && address.find(':') == colon) {
    return address.substr(0, colon);
  }
  return address;
}

}  // namespace bulwark::network
