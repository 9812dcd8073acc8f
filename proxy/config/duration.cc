#include "proxy/config/duration.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>

#include <fmt/format.h>

namespace bulwark::config {
namespace {

constexpr size_t kMaxDigitsPerPart = 5;
constexpr int kMaxParts = 4;

bool isDigit(char c) { return c >= '0' && c <= '9'; }

/** Length of the unit at text[i] ("ms", "h", "m", "s") and its size in ms; 0 if none. */
size_t unitAt(std::string_view text, size_t i, int64_t& unit_ms) {
  if (text.substr(i, 2) == "ms") {
    unit_ms = 1;
    return 2;
  }
  if (i < text.size()) {
    switch (text[i]) {
      case 'h': unit_ms = 3600 * 1000; return 1;
      case 'm': unit_ms = 60 * 1000; return 1;
      case 's': unit_ms = 1000; return 1;
      default: break;
    }
  }
  return 0;
}

/**
 * Go-style reading (fractions, any number of digits and parts) used only to suggest the right
 * spelling of a value the strict grammar rejects, e.g. "0.25s" -> 250ms.
 */
std::optional<int64_t> lenientMillis(std::string_view text) {
  double total = 0;
  size_t i = 0;
  if (text.empty()) {
    return std::nullopt;
  }
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && (isDigit(text[i]) || text[i] == '.')) {
      ++i;
    }
    if (i == start) {
      return std::nullopt;
    }
    std::string number(text.substr(start, i - start));
    if (number == "." || std::count(number.begin(), number.end(), '.') > 1) {
      return std::nullopt;
    }
    int64_t unit_ms = 0;
    size_t unit_len = unitAt(text, i, unit_ms);
    if (unit_len == 0) {
      return std::nullopt;
    }
    i += unit_len;
    total += std::stod(number) * static_cast<double>(unit_ms);
  }
  double rounded = std::round(total);
  if (std::fabs(total - rounded) > 1e-6 || rounded > 1e15) {
    return std::nullopt;
  }
  return static_cast<int64_t>(rounded);
}

Status fail(std::string_view text, std::string_view reason) {
  return Status::error(fmt::format("{}, got \"{}\"{}", kDurationHint, text, reason));
}

std::string suggestion(std::string_view text, std::string_view what) {
  auto ms = lenientMillis(text);
  if (ms) {
    return fmt::format(" ({}: write \"{}\")", what, formatDuration(Duration(*ms)));
  }
  return fmt::format(" ({})", what);
}

}  // namespace

Result<Duration> parseDuration(std::string_view text) {
  if (text.empty()) {
    return Status::error(fmt::format("{}, got an empty string", kDurationHint));
  }
  if (text[0] == '-') {
    return fail(text, " (durations cannot be negative)");
  }
  if (text[0] == '+') {
    return fail(text, " (write it without a sign)");
  }
  bool only_number = true;
  for (char c : text) {
    only_number = only_number && (isDigit(c) || c == '.');
  }
  if (only_number) {
    return fail(text, " (add a unit: h, m, s or ms)");
  }

  int64_t total = 0;
  int parts = 0;
  bool too_many_digits = false;
  size_t i = 0;
  size_t digits = 0;
  bool clean = true;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && isDigit(text[i])) {
      ++i;
    }
    digits = i - start;
    int64_t unit_ms = 0;
    size_t unit_len = digits == 0 ? 0 : unitAt(text, i, unit_ms);
    if (unit_len == 0) {
      clean = false;
      break;
    }
    if (digits > 12) {
      return fail(text, " (too large)");
    }
    too_many_digits = too_many_digits || digits > kMaxDigitsPerPart;
    int64_t value = std::stoll(std::string(text.substr(start, digits)));
    total += value * unit_ms;
    i += unit_len;
    ++parts;
  }

  if (clean) {
    if (too_many_digits) {
      return fail(text, suggestion(text, "at most 5 digits per unit"));
    }
    if (parts > kMaxParts) {
      return fail(text, suggestion(text, "at most 4 parts"));
    }
    return Duration(total);
  }
  if (text.find('.') != std::string_view::npos) {
    return fail(text, suggestion(text, "no fractions"));
  }
  if (digits > 0 && i == text.size()) {
    return fail(text, " (every number needs a unit: h, m, s or ms)");
  }
  const bool starts_with_digit = isDigit(text[0]);
  const bool other_letters = text.find_first_not_of("0123456789hms") != std::string_view::npos;
  if (starts_with_digit && (digits > 0 || other_letters)) {
    return fail(text, " (units are h, m, s and ms)");
  }
  return fail(text, "");
}

std::string formatDuration(Duration duration) {
  int64_t ms = duration.count();
  if (ms == 0) {
    return "0s";
  }
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  const int64_t hours = ms / 3600000;
  ms %= 3600000;
  const int64_t minutes = ms / 60000;
  ms %= 60000;
  const int64_t seconds = ms / 1000;
  ms %= 1000;
  if (hours != 0) {
    out += fmt::format("{}h", hours);
  }
  if (minutes != 0) {
    out += fmt::format("{}m", minutes);
  }
  if (seconds != 0) {
    out += fmt::format("{}s", seconds);
  }
  if (ms != 0) {
    out += fmt::format("{}ms", ms);
  }
  return out;
}

}  // namespace bulwark::config
