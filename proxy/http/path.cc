#include "proxy/http/path.h"

#include <cctype>
#include <vector>

#include "common/ascii.h"

namespace bulwark::http {
namespace {

bool unreserved(unsigned char c) {
  return std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~';
}

/** Removes "." and ".." segments (RFC 3986 §5.2.4); ".." never climbs above the root. */
std::string removeDotSegments(const std::string& path, bool merge_slashes) {
  std::vector<std::string> segments;
  size_t start = 1;  // path[0] == '/'
  bool trailing_slash = false;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) {
      end = path.size();
    }
    std::string segment = path.substr(start, end - start);
    const bool last = end == path.size();
    if (segment == ".") {
      trailing_slash = last;
    } else if (segment == "..") {
      if (!segments.empty()) {
        segments.pop_back();
      }
      trailing_slash = last;
    } else if (segment.empty() && merge_slashes && !last) {
      // "//": dropped
    } else {
      segments.push_back(std::move(segment));
      trailing_slash = false;
    }
    start = end + 1;
  }
  std::string out;
  for (const auto& s : segments) {
    out += '/';
    out += s;
  }
  if (out.empty() || trailing_slash) {
    out += '/';
  }
  return out;
}

std::string collapseSlashes(const std::string& path) {
  std::string out;
  out.reserve(path.size());
  for (char c : path) {
    if (c != '/' || out.empty() || out.back() != '/') {
      out += c;
    }
  }
  return out;
}

/** True when normalizePath would leave `path` (no query) as it is: one scan, no allocation. */
bool alreadyNormal(std::string_view path, const PathOptions& options) {
  for (size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    if (c == '%' || (c == '\\' && options.normalize)) {
      return false;
    }
    if (c != '/' || i + 1 >= path.size()) {
      continue;
    }
    const std::string_view rest = path.substr(i + 1);
    if (options.merge_slashes && rest.front() == '/') {
      return false;
    }
    if (options.normalize) {
      const std::string_view segment = rest.substr(0, rest.find('/'));
      if (segment == "." || segment == "..") {
        return false;
      }
    }
  }
  return true;
}

}  // namespace

PathResult normalizePath(std::string_view target, const PathOptions& options) {
  PathResult result;
  const size_t query_at = target.find('?');
  const std::string_view path = target.substr(0, query_at);
  const std::string_view query =
      query_at == std::string_view::npos ? std::string_view() : target.substr(query_at);
  if (path.empty() || path.front() != '/' || alreadyNormal(path, options)) {
    result.unchanged = true;  // "*" (OPTIONS) and the like are left alone too
    return result;
  }
  std::string decoded;
  decoded.reserve(path.size());
  bool unescaped_slash = false;
  for (size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    if (c != '%') {
      decoded += (options.normalize && c == '\\') ? '/' : c;
      continue;
    }
    const int hi = i + 2 < path.size() ? hexValue(path[i + 1]) : -1;
    const int lo = i + 2 < path.size() ? hexValue(path[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      result.action = PathResult::Action::Reject;
      result.reason = "invalid percent-encoding";
      return result;
    }
    const auto byte = static_cast<unsigned char>(hi * 16 + lo);
    if (byte == '/' || byte == '\\') {
      switch (options.escaped_slashes) {
        case EscapedSlashes::RejectRequest:
          result.action = PathResult::Action::Reject;
          result.reason = "escaped slash in path";
          return result;
        case EscapedSlashes::UnescapeAndRedirect:
        case EscapedSlashes::UnescapeAndForward:
          decoded += '/';
          unescaped_slash = true;
          i += 2;
          continue;
        case EscapedSlashes::KeepUnchanged: break;
      }
    }
    if (options.normalize && unreserved(byte)) {
      decoded += static_cast<char>(byte);  // "%2e" is ".", and dot segments see it
    } else {
      // Kept encoded, with upper-case hex so equal paths are equal strings.
      decoded += '%';
      decoded += static_cast<char>(std::toupper(static_cast<unsigned char>(path[i + 1])));
      decoded += static_cast<char>(std::toupper(static_cast<unsigned char>(path[i + 2])));
    }
    i += 2;
  }
  std::string normalized = options.normalize ? removeDotSegments(decoded, options.merge_slashes)
                           : options.merge_slashes ? collapseSlashes(decoded)
                                                   : decoded;
  result.path = normalized + std::string(query);
  if (unescaped_slash && options.escaped_slashes == EscapedSlashes::UnescapeAndRedirect) {
    result.action = PathResult::Action::Redirect;
  }
  return result;
}

}  // namespace bulwark::http
