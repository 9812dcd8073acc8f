#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bulwark::testing {

/**
 * An ordered header list, exactly as seen on (or to be put on) the wire: names keep their case
 * for HTTP/1.1, duplicates stay separate entries. Tests about header order and duplicates
 * (smuggling, forwarded-header trust) need this, so it is not a map.
 * Thread: value type, any.
 */
using Headers = std::vector<std::pair<std::string, std::string>>;

/** ASCII case-insensitive equality, for header names. */
bool equalsIgnoreCase(std::string_view a, std::string_view b);

/** ASCII lower-case copy. */
std::string toLower(std::string_view s);

/** First value of header `name` (case-insensitive), or nullopt when absent. */
std::optional<std::string> findHeader(const Headers& headers, std::string_view name);

/** Every value of header `name` (case-insensitive), in wire order. */
std::vector<std::string> headerValues(const Headers& headers, std::string_view name);

/** Number of entries named `name` (case-insensitive). */
size_t headerCount(const Headers& headers, std::string_view name);

}  // namespace bulwark::testing
