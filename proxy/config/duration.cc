#include "proxy/config/duration.h"

#include <cstdint>
#include <optional>

#include <fmt/format.h>

namespace bulwark::config {
namespace {

constexpr size_t kMaxDigitsPerPart = 5;
constexpr int kMaxParts = 4;
// A part with more digits is "too large" whatever its unit. 12 digits times the largest unit
// (1h = 3.6e6 ms) stays below 2^63, so one part never overflows; sums are checked.
constexpr size_t kMaxDigitsRead = 12;
// The lenient reading keeps at most this many significant digits and decimals, for the same
// reason: significand x unit and 10^decimals both fit in int64_t.
constexpr size_t kMaxLenientDigits = 12;
constexpr size_t kMaxLenientDecimals = 18;

constexpr int64_t kHourMs = 3600L * 1000;
constexpr int64_t kMinuteMs = 60L * 1000;
constexpr int64_t kSecondMs = 1000;

bool isDigit(char c) { return c >= '0' && c <= '9'; }

/** Length of the unit at text[i] ("ms", "h", "m", "s") and its size in ms; 0 if none. */
size_t unitAt(std::string_view text, size_t i, int64_t& unit_ms) {
  if (text.substr(i, 2) == "ms") {
    unit_ms = 1;
    return 2;
  }
  if (i < text.size()) {
    switch (text[i]) {
      case 'h': unit_ms = kHourMs; return 1;
      case 'm': unit_ms = kMinuteMs; return 1;
      case 's': unit_ms = kSecondMs; return 1;
      default: break;
    }
  }
  return 0;
}

/** Value of a run of at most 18 decimal digits (the caller bounds the length). */
int64_t digitsValue(std::string_view digits) {
  int64_t value = 0;
  for (char c : digits) {
    value = value * 10 + (c - '0');
  }
  return value;
}

/**
 * `number` x `unit_ms` for a decimal number with at most one '.', when that is a whole number of
 * milliseconds that fits; exact integer arithmetic, so "0.1s" is 100 and nothing rounds.
 */
std::optional<int64_t> exactPartMillis(std::string_view number, int64_t unit_ms) {
  const size_t dot = number.find('.');
  std::string_view whole = number.substr(0, dot);
  std::string_view fraction =
      dot == std::string_view::npos ? std::string_view() : number.substr(dot + 1);
  while (!whole.empty() && whole.front() == '0') {
    whole.remove_prefix(1);
  }
  while (!fraction.empty() && fraction.back() == '0') {
    fraction.remove_suffix(1);
  }
  // Significant digits: the whole part, then the fraction (its leading zeros only count as
  // decimals when there is no whole part).
  std::string_view leading_fraction = fraction;
  if (whole.empty()) {
    while (!leading_fraction.empty() && leading_fraction.front() == '0') {
      leading_fraction.remove_prefix(1);
    }
  }
  if (whole.size() + leading_fraction.size() > kMaxLenientDigits ||
      fraction.size() > kMaxLenientDecimals) {
    return std::nullopt;
  }
  int64_t significand = digitsValue(whole);
  for (char c : leading_fraction) {
    significand = significand * 10 + (c - '0');
  }
  int64_t scale = 1;
  for (size_t i = 0; i < fraction.size(); ++i) {
    scale *= 10;
  }
  const int64_t scaled = significand * unit_ms;  // < 10^12 x 3.6e6 < 2^63
  if (scaled % scale != 0) {
    return std::nullopt;
  }
  return scaled / scale;
}

/**
 * Go-style reading (fractions, any number of digits and parts) used only to suggest the right
 * spelling of a value the strict grammar rejects, e.g. "0.25s" -> 250ms. nullopt when the value
 * is not a whole number of milliseconds or has no GEP-2257 spelling (above kMaxConfigDuration).
 */
std::optional<int64_t> lenientMillis(std::string_view text) {
  if (text.empty()) {
    return std::nullopt;
  }
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    const size_t start = i;
    size_t dots = 0;
    while (i < text.size() && (isDigit(text[i]) || text[i] == '.')) {
      dots += text[i] == '.' ? 1 : 0;
      ++i;
    }
    const std::string_view number = text.substr(start, i - start);
    if (number.empty() || number == "." || dots > 1) {
      return std::nullopt;
    }
    int64_t unit_ms = 0;
    const size_t unit_len = unitAt(text, i, unit_ms);
    if (unit_len == 0) {
      return std::nullopt;
    }
    i += unit_len;
    const std::optional<int64_t> part = exactPartMillis(number, unit_ms);
    if (!part || *part > kMaxConfigDuration.count() - total) {
      return std::nullopt;
    }
    total += *part;
  }
  return total;
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
    if (digits > kMaxDigitsRead) {
      return fail(text, " (too large)");
    }
    too_many_digits = too_many_digits || digits > kMaxDigitsPerPart;
    const int64_t part_ms = digitsValue(text.substr(start, digits)) * unit_ms;
    if (__builtin_add_overflow(total, part_ms, &total)) {
      return fail(text, " (too large)");
    }
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
    if (total > kMaxConfigDuration.count()) {
      return fail(text,
                  fmt::format(" (too large: at most {})", formatDuration(kMaxConfigDuration)));
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
  const int64_t ms = duration.count();
  if (ms == 0) {
    return "0s";
  }
  std::string out = ms < 0 ? "-" : "";
  uint64_t rest = ms < 0 ? 0 - static_cast<uint64_t>(ms) : static_cast<uint64_t>(ms);
  struct Unit {
    const char* name;
    uint64_t ms;
  };
  constexpr Unit kUnits[] = {{"h", kHourMs}, {"m", kMinuteMs}, {"s", kSecondMs}, {"ms", 1}};
  for (const Unit& unit : kUnits) {
    if (rest >= unit.ms) {
      out += fmt::format("{}{}", rest / unit.ms, unit.name);
      rest %= unit.ms;
    }
  }
  return out;
}

}  // namespace bulwark::config
