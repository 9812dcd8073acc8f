#include "proxy/config/address.h"

#include <arpa/inet.h>

#include <charconv>

#include <fmt/format.h>

namespace bulwark::config {
namespace {

bool isHostnameLabelChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

bool isValidHostname(std::string_view host) {
  if (host.empty() || host.size() > 253) {
    return false;
  }
  size_t label = 0;
  for (size_t i = 0; i < host.size(); ++i) {
    char c = host[i];
    if (c == '.') {
      if (label == 0 || host[i - 1] == '-') {
        return false;
      }
      label = 0;
      continue;
    }
    if (!isHostnameLabelChar(c) || (label == 0 && c == '-') || ++label > 63) {
      return false;
    }
  }
  return label != 0 || host.back() == '.';
}

}  // namespace

bool HostPort::isWildcard() const { return host == "0.0.0.0" || host == "::"; }

Result<HostPort> parseHostPort(std::string_view text) {
  HostPort out;
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Status::error(
          fmt::format(R"(expected [IPv6]:port such as "[::1]:8080", got "{}")", text));
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    in6_addr addr6{};
    if (inet_pton(AF_INET6, std::string(host).c_str(), &addr6) != 1) {
      return Status::error(fmt::format("\"{}\" is not an IPv6 address", host));
    }
    out.kind = HostPort::Kind::Ipv6;
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return Status::error(
          fmt::format(R"(expected host:port such as "127.0.0.1:8080", got "{}")", text));
    }
    if (text.find(':') != colon) {
      return Status::error(
          fmt::format(R"(IPv6 addresses need brackets, e.g. "[::1]:8080", got "{}")", text));
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.empty()) {
      return Status::error(
          fmt::format("missing host in \"{}\" (use 0.0.0.0:PORT for all interfaces)", text));
    }
    in_addr addr4{};
    if (inet_pton(AF_INET, std::string(host).c_str(), &addr4) == 1) {
      out.kind = HostPort::Kind::Ipv4;
    } else if (isValidHostname(host) &&
               host.find_first_not_of("0123456789.") != std::string_view::npos) {
      out.kind = HostPort::Kind::Name;
    } else {
      return Status::error(fmt::format("\"{}\" is not an IP address or host name", host));
    }
  }
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || value > 65535) {
    return Status::error(
        fmt::format("port must be a number between 0 and 65535, got \"{}\"", port));
  }
  out.host = std::string(host);
  out.port = static_cast<uint16_t>(value);
  return out;
}

}  // namespace bulwark::config
