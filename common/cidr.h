#pragma once

// IPv4 / IPv6 address ranges in CIDR notation ("10.0.0.0/8", "::1/128", a bare address = one
// host), for allow lists. Thread: any (value types, pure functions).

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace bulwark {

class Cidr {
public:
  /** Parses "ADDR/BITS" or "ADDR"; nullopt when malformed or BITS is out of range. */
  static std::optional<Cidr> parse(std::string_view text);
  /** True when `ip` (numeric, without port or brackets) is inside; IPv4-mapped IPv6 counts. */
  bool contains(std::string_view ip) const;

private:
  bool v6_ = false;
  std::array<uint8_t, 16> bytes_{};
  uint32_t bits_ = 0;
};

}  // namespace bulwark
