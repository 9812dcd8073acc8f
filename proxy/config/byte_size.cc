#include "proxy/config/byte_size.h"

#include <charconv>

#include <fmt/format.h>

namespace bulwark::config {
namespace {

struct Suffix {
  std::string_view name;
  uint64_t factor;
};

constexpr Suffix kSuffixes[] = {
    {"Gi", uint64_t{1} << 30},
    {"Mi", uint64_t{1} << 20},
    {"Ki", uint64_t{1} << 10},
};

}  // namespace

Result<uint64_t> parseByteSize(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') {
    ++digits;
  }
  std::string_view suffix = text.substr(digits);
  uint64_t factor = 0;
  if (suffix.empty()) {
    factor = 1;
  }
  for (const Suffix& s : kSuffixes) {
    if (suffix == s.name) {
      factor = s.factor;
    }
  }
  if (digits == 0 || factor == 0) {
    std::string_view hint = digits > 0 ? " (suffixes are Ki, Mi and Gi)" : "";
    if (!text.empty() && text[0] == '-') {
      hint = " (sizes cannot be negative)";
    }
    return Status::error(fmt::format("{}, got \"{}\"{}", kByteSizeHint, text, hint));
  }
  uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + digits, value);
  if (ec != std::errc() || value > UINT64_MAX / factor) {
    return Status::error(fmt::format("{}, got \"{}\" (too large)", kByteSizeHint, text));
  }
  return value * factor;
}

std::string formatByteSize(uint64_t bytes) {
  for (const Suffix& s : kSuffixes) {
    if (bytes != 0 && bytes % s.factor == 0) {
      return fmt::format("{}{}", bytes / s.factor, s.name);
    }
  }
  return std::to_string(bytes);
}

}  // namespace bulwark::config
