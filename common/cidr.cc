#include "common/cidr.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <string>

namespace bulwark {
namespace {

/** Parses a numeric address into 16 bytes (IPv4 in the first 4); nullopt when not numeric. */
std::optional<std::pair<bool, std::array<uint8_t, 16>>> parseAddress(std::string_view text) {
  std::array<uint8_t, 16> bytes{};
  const std::string s(text);
  if (inet_pton(AF_INET, s.c_str(), bytes.data()) == 1) {
    return std::make_pair(false, bytes);
  }
  if (inet_pton(AF_INET6, s.c_str(), bytes.data()) == 1) {
    // ::ffff:a.b.c.d is the IPv4 address a.b.c.d.
    static constexpr std::array<uint8_t, 12> kMapped = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::equal(kMapped.begin(), kMapped.end(), bytes.begin())) {
      std::array<uint8_t, 16> v4{};
      std::copy(bytes.begin() + 12, bytes.end(), v4.begin());
      return std::make_pair(false, v4);
    }
    return std::make_pair(true, bytes);
  }
  return std::nullopt;
}

}  // namespace

std::optional<Cidr> Cidr::parse(std::string_view text) {
  const size_t slash = text.find('/');
  auto address = parseAddress(text.substr(0, slash));
  if (!address) {
    return std::nullopt;
  }
  Cidr cidr;
  cidr.v6_ = address->first;
  cidr.bytes_ = address->second;
  const uint32_t max_bits = cidr.v6_ ? 128 : 32;
  cidr.bits_ = max_bits;
  if (slash != std::string_view::npos) {
    const std::string_view bits = text.substr(slash + 1);
    uint32_t n = 0;
    auto [end, ec] = std::from_chars(bits.data(), bits.data() + bits.size(), n);
    if (ec != std::errc() || end != bits.data() + bits.size() || bits.empty() || n > max_bits) {
      return std::nullopt;
    }
    cidr.bits_ = n;
  }
  return cidr;
}

bool Cidr::contains(std::string_view ip) const {
  auto address = parseAddress(ip);
  if (!address || address->first != v6_) {
    return false;
  }
  const auto& other = address->second;
  const uint32_t full = bits_ / 8;
  for (uint32_t i = 0; i < full; ++i) {
    if (other[i] != bytes_[i]) {
      return false;
    }
  }
  const uint32_t rest = bits_ % 8;
  if (rest == 0) {
    return true;
  }
  const auto mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (other[full] & mask) == (bytes_[full] & mask);
}

}  // namespace bulwark
