#include "policies/retry/retry_after.h"

#include <array>
#include <cstdio>

namespace bulwark::policies {
namespace {

constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr std::array<std::string_view, 7> kShortDays = {"Mon", "Tue", "Wed", "Thu",
                                                        "Fri", "Sat", "Sun"};
constexpr std::array<std::string_view, 7> kLongDays = {
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant, "chrono-Compatible
// Low-Level Date Algorithms"); pure arithmetic, so no timegm() and no locale or TZ state.
int64_t daysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

unsigned daysInMonth(int64_t year, unsigned month) {
  static constexpr std::array<unsigned, 12> kDays = {31, 28, 31, 30, 31, 30,
                                                     31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[month - 1];
}

// Reads exactly `n` digits.
bool readDigits(std::string_view& s, size_t n, int64_t& out) {
  if (s.size() < n) {
    return false;
  }
  int64_t v = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!isDigit(s[i])) {
      return false;
    }
    v = v * 10 + (s[i] - '0');
  }
  s.remove_prefix(n);
  out = v;
  return true;
}

bool expect(std::string_view& s, std::string_view literal) {
  if (s.substr(0, literal.size()) != literal) {
    return false;
  }
  s.remove_prefix(literal.size());
  return true;
}

bool readMonth(std::string_view& s, unsigned& month) {
  for (size_t i = 0; i < kMonths.size(); ++i) {
    if (expect(s, kMonths[i])) {
      month = static_cast<unsigned>(i + 1);
      return true;
    }
  }
  return false;
}

template <size_t N>
bool readDayName(std::string_view& s, const std::array<std::string_view, N>& names) {
  for (const auto name : names) {
    if (expect(s, name)) {
      return true;
    }
  }
  return false;
}

// time-of-day = hour ":" minute ":" second
bool readTime(std::string_view& s, int64_t& h, int64_t& m, int64_t& sec) {
  return readDigits(s, 2, h) && expect(s, ":") && readDigits(s, 2, m) && expect(s, ":") &&
         readDigits(s, 2, sec) && h <= 23 && m <= 59 && sec <= 60;
}

bool assemble(int64_t year, unsigned month, int64_t day, int64_t h, int64_t m, int64_t sec,
              int64_t& out) {
  if (year < 1 || day < 1 || day > daysInMonth(year, month)) {
    return false;
  }
  // A leap second (":60") is folded into the next second.
  out = daysFromCivil(year, month, static_cast<unsigned>(day)) * 86400 + h * 3600 + m * 60 + sec;
  return true;
}

// IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
bool parseImfFixdate(std::string_view s, int64_t& out) {
  int64_t day = 0, year = 0, h = 0, m = 0, sec = 0;
  unsigned month = 0;
  return readDayName(s, kShortDays) && expect(s, ", ") && readDigits(s, 2, day) && expect(s, " ") &&
         readMonth(s, month) && expect(s, " ") && readDigits(s, 4, year) && expect(s, " ") &&
         readTime(s, h, m, sec) && expect(s, " GMT") && s.empty() &&
         assemble(year, month, day, h, m, sec, out);
}

// RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
bool parseRfc850(std::string_view s, int64_t& out) {
  int64_t day = 0, yy = 0, h = 0, m = 0, sec = 0;
  unsigned month = 0;
  if (!(readDayName(s, kLongDays) && expect(s, ", ") && readDigits(s, 2, day) && expect(s, "-") &&
        readMonth(s, month) && expect(s, "-") && readDigits(s, 2, yy) && expect(s, " ") &&
        readTime(s, h, m, sec) && expect(s, " GMT") && s.empty())) {
    return false;
  }
  // RFC 9110 wants "not more than 50 years in the future"; without a clock here a fixed pivot
  // (70 -> 1970..2069) is used instead. The form has been obsolete since 1996.
  const int64_t year = yy < 70 ? 2000 + yy : 1900 + yy;
  return assemble(year, month, day, h, m, sec, out);
}

// asctime: "Sun Nov  6 08:49:37 1994"
bool parseAsctime(std::string_view s, int64_t& out) {
  int64_t day = 0, year = 0, h = 0, m = 0, sec = 0;
  unsigned month = 0;
  if (!(readDayName(s, kShortDays) && expect(s, " ") && readMonth(s, month) && expect(s, " "))) {
    return false;
  }
  if (expect(s, " ")) {
    if (!readDigits(s, 1, day)) {
      return false;
    }
  } else if (!readDigits(s, 2, day)) {
    return false;
  }
  return expect(s, " ") && readTime(s, h, m, sec) && expect(s, " ") && readDigits(s, 4, year) &&
         s.empty() && assemble(year, month, day, h, m, sec, out);
}

}  // namespace

bool parseHttpDate(std::string_view value, int64_t& unix_seconds) {
  value = trim(value);
  return parseImfFixdate(value, unix_seconds) || parseRfc850(value, unix_seconds) ||
         parseAsctime(value, unix_seconds);
}

std::string formatHttpDate(int64_t unix_seconds) {
  int64_t days = unix_seconds / 86400;
  int64_t rem = unix_seconds % 86400;
  if (rem < 0) {
    rem += 86400;
    --days;
  }
  // Inverse of daysFromCivil (same source).
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  const int64_t y = static_cast<int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0);
  // 1970-01-01 was a Thursday (index 3 in kShortDays).
  const int64_t weekday = ((days % 7) + 7 + 3) % 7;
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%s, %02u %s %04lld %02lld:%02lld:%02lld GMT",
                std::string(kShortDays[static_cast<size_t>(weekday)]).c_str(), d,
                std::string(kMonths[m - 1]).c_str(), static_cast<long long>(y),
                static_cast<long long>(rem / 3600), static_cast<long long>((rem / 60) % 60),
                static_cast<long long>(rem % 60));
  return buf;
}

Pushback parseRetryAfter(std::string_view value, WallTime now) {
  value = trim(value);
  if (value.empty()) {
    return Pushback::none();
  }
  if (isDigit(value.front())) {
    int64_t seconds = 0;
    for (const char c : value) {
      if (!isDigit(c)) {
        return Pushback::none();  // "1.5", "10s", "5 6": not delay-seconds, maybe not a date
      }
      // Saturate: anything beyond what a Duration holds is "longer than any cap".
      if (seconds > (kMaxDuration.count() / 1'000'000'000 - 9) / 10) {
        return Pushback::after(kMaxDuration);
      }
      seconds = seconds * 10 + (c - '0');
    }
    return Pushback::after(std::chrono::seconds(seconds));
  }
  int64_t date = 0;
  if (!parseHttpDate(value, date)) {
    return Pushback::none();
  }
  const int64_t now_s =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  if (date <= now_s) {
    return Pushback::after(Duration::zero());
  }
  const int64_t delta = date - now_s;
  if (delta > kMaxDuration.count() / 1'000'000'000) {
    return Pushback::after(kMaxDuration);
  }
  return Pushback::after(std::chrono::seconds(delta));
}

Pushback parseGrpcRetryPushback(std::string_view value) {
  value = trim(value);
  if (value.empty() || value.front() == '-' || value.size() > 10) {
    return Pushback::doNotRetry();
  }
  int64_t ms = 0;
  for (const char c : value) {
    if (!isDigit(c)) {
      return Pushback::doNotRetry();
    }
    ms = ms * 10 + (c - '0');
  }
  if (ms > INT32_MAX) {
    return Pushback::doNotRetry();  // not a signed 32-bit integer: "unparseable"
  }
  return Pushback::after(std::chrono::milliseconds(ms));
}

}  // namespace bulwark::policies
