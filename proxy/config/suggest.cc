#include "proxy/config/suggest.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

namespace bulwark::config {
namespace {

std::string normalize(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c != '_' && c != '-') {
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      size_t substitute = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      row[j] = std::min({above + 1, row[j - 1] + 1, substitute});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::optional<std::string> closestMatch(std::string_view word,
                                        const std::vector<std::string>& candidates) {
  // No field name is near this long, and an unknown key can be kilobytes: no typo to suggest.
  constexpr size_t kLongestSuggestible = 100;
  if (word.size() > kLongestSuggestible) {
    return std::nullopt;
  }
  const std::string normalized = normalize(word);
  for (const std::string& c : candidates) {
    if (normalize(c) == normalized) {
      return c;
    }
  }
  // Allow about one typo per three characters, at most three.
  const size_t budget = std::min<size_t>(3, std::max<size_t>(1, word.size() / 3));
  const std::string lowered = lower(word);
  std::optional<std::string> best;
  size_t best_distance = budget + 1;
  for (const std::string& c : candidates) {
    // The distance is at least the difference in length: skip the quadratic computation when
    // that alone is over budget (an unknown key can be kilobytes long).
    const size_t length_gap =
        c.size() > word.size() ? c.size() - word.size() : word.size() - c.size();
    if (length_gap >= best_distance) {
      continue;
    }
    size_t d = editDistance(lowered, lower(c));
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

std::string didYouMean(std::string_view word, const std::vector<std::string>& candidates) {
  auto match = closestMatch(word, candidates);
  return match ? fmt::format("; did you mean \"{}\"?", *match) : std::string();
}

}  // namespace bulwark::config
