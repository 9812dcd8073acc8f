#pragma once

// "did you mean" suggestions for near-miss field names, enum values and references.
// Thread: any (pure functions).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bulwark::config {

/** Levenshtein distance (insert, delete, substitute all cost 1). */
size_t editDistance(std::string_view a, std::string_view b);

/**
 * The candidate `word` most likely meant, or nullopt. A candidate matches when it is equal
 * ignoring case, `_` and `-` (per_try_timeout -> perTryTimeout, LEAST-REQUEST -> LEAST_REQUEST),
 * or when its case-insensitive edit distance is small for the word's length.
 */
std::optional<std::string> closestMatch(std::string_view word,
                                        const std::vector<std::string>& candidates);

/** `; did you mean "X"?` or an empty string. */
std::string didYouMean(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace bulwark::config
