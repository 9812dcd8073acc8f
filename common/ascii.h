#pragma once

// ASCII helpers for protocol tokens (header names, Upgrade values, TLS server names): locale-
// independent, no allocation. Thread: any.

#include <string_view>

namespace bulwark {

constexpr char asciiLower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

/** The value of a hex digit (either case), -1 for anything else. */
constexpr int hexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

/** a == b ignoring ASCII case. */
constexpr bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (asciiLower(a[i]) != asciiLower(b[i])) {
      return false;
    }
  }
  return true;
}

/**
 * A server name pattern against a host name, ignoring case: exact, or "*.example.com", which
 * matches exactly one more label in front ("api.example.com", not "example.com" nor
 * "a.b.example.com"). What certificate wildcards and SNI route matches both mean.
 */
constexpr bool serverNameMatches(std::string_view pattern, std::string_view host) {
  if (pattern.size() > 2 && pattern.substr(0, 2) == "*.") {
    const size_t dot = host.find('.');
    return dot != std::string_view::npos && dot > 0 &&
           equalsIgnoreCase(pattern.substr(1), host.substr(dot));
  }
  return equalsIgnoreCase(pattern, host);
}

}  // namespace bulwark
