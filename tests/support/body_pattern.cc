#include "tests/support/body_pattern.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace bulwark::testing {

namespace {

constexpr size_t kTableSize = kBodyPatternMaxSpan + kBodyPatternPeriod;

const std::array<char, kTableSize>& table() {
  static const auto t = [] {
    std::array<char, kTableSize> a{};
    static constexpr char kAlphabet[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    for (size_t i = 0; i < a.size(); ++i) {
      // Printable bytes keep failure messages readable.
      a[i] = kAlphabet[(i % kBodyPatternPeriod) % (sizeof(kAlphabet) - 1)];
    }
    return a;
  }();
  return t;
}

}  // namespace

const char* bodyPatternAt(uint64_t offset) {
  return table().data() + (offset % kBodyPatternPeriod);
}

void fillBodyPattern(uint64_t offset, char* dst, size_t len) {
  while (len > 0) {
    const size_t n = std::min(len, kBodyPatternMaxSpan);
    std::memcpy(dst, bodyPatternAt(offset), n);
    dst += n;
    offset += n;
    len -= n;
  }
}

std::string bodyPattern(size_t len) {
  std::string s(len, '\0');
  fillBodyPattern(0, s.data(), len);
  return s;
}

bool matchesBodyPattern(uint64_t offset, std::string_view data) {
  while (!data.empty()) {
    const size_t n = std::min(data.size(), kBodyPatternMaxSpan);
    if (std::memcmp(data.data(), bodyPatternAt(offset), n) != 0) {
      return false;
    }
    data.remove_prefix(n);
    offset += n;
  }
  return true;
}

}  // namespace bulwark::testing
