#include "proxy/http/grpc.h"

#include <algorithm>
#include <charconv>

namespace bulwark::http::grpc {

std::optional<std::chrono::microseconds> parseTimeout(std::string_view value) {
  if (value.size() < 2 || value.size() > 9) {
    return std::nullopt;
  }
  uint64_t amount = 0;
  auto digits = value.substr(0, value.size() - 1);
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), amount);
  if (ec != std::errc() || ptr != digits.data() + digits.size()) {
    return std::nullopt;
  }
  using std::chrono::microseconds;
  switch (value.back()) {
    case 'H': return microseconds(amount * 3600ULL * 1000000ULL);
    case 'M': return microseconds(amount * 60ULL * 1000000ULL);
    case 'S': return microseconds(amount * 1000000ULL);
    case 'm': return microseconds(amount * 1000ULL);
    case 'u': return microseconds(amount);
    case 'n': return microseconds(amount / 1000ULL);
    default: return std::nullopt;
  }
}

std::string encodeTimeout(std::chrono::microseconds timeout) {
  uint64_t us = timeout.count() < 0 ? 0 : static_cast<uint64_t>(timeout.count());
  if (us < 100000000ULL) {
    return std::to_string(us) + "u";
  }
  uint64_t ms = us / 1000;
  if (ms < 100000000ULL) {
    return std::to_string(ms) + "m";
  }
  uint64_t s = ms / 1000;
  if (s < 100000000ULL) {
    return std::to_string(s) + "S";
  }
  // TimeoutValue has at most 8 digits: a longer deadline goes out as the longest one there is
  // (99999999H, over 11,000 years), never as a header the upstream must reject.
  return std::to_string(std::min<uint64_t>(s / 3600, 99999999ULL)) + "H";
}

}  // namespace bulwark::http::grpc
