#include "proxy/http/grpc.h"

#include <charconv>

namespace bulwark::http::grpc {

std::string_view statusName(int code) {
  static constexpr std::string_view kNames[] = {"OK",
                                                "CANCELLED",
                                                "UNKNOWN",
                                                "INVALID_ARGUMENT",
                                                "DEADLINE_EXCEEDED",
                                                "NOT_FOUND",
                                                "ALREADY_EXISTS",
                                                "PERMISSION_DENIED",
                                                "RESOURCE_EXHAUSTED",
                                                "FAILED_PRECONDITION",
                                                "ABORTED",
                                                "OUT_OF_RANGE",
                                                "UNIMPLEMENTED",
                                                "INTERNAL",
                                                "UNAVAILABLE",
                                                "DATA_LOSS",
                                                "UNAUTHENTICATED"};
  if (code < 0 || code > 16) {
    return "UNKNOWN";
  }
  return kNames[code];
}

std::optional<int> parseStatus(std::string_view value) {
  int code = 0;
  auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), code);
  if (ec != std::errc() || ptr != value.data() + value.size()) {
    return std::nullopt;
  }
  return code;
}

std::optional<int> statusFromName(std::string_view name) {
  for (int i = 0; i <= 16; ++i) {
    if (statusName(i) == name) {
      return i;
    }
  }
  return parseStatus(name);
}

int statusFromHttp(uint32_t http_status) {
  switch (http_status) {
    case 400: return static_cast<int>(Status::Internal);
    case 401: return static_cast<int>(Status::Unauthenticated);
    case 403: return static_cast<int>(Status::PermissionDenied);
    case 404: return static_cast<int>(Status::Unimplemented);
    case 429:
    case 502:
    case 503:
    case 504: return static_cast<int>(Status::Unavailable);
    default: return static_cast<int>(Status::Unknown);
  }
}

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
  return std::to_string(s / 3600) + "H";
}

}  // namespace bulwark::http::grpc
