#pragma once

// Request path normalisation before routing and forwarding (Envoy's normalize_path,
// merge_slashes and path_with_escaped_slashes_action): the route that matches is the route the
// upstream sees, so "/public/../internal", "/%2e%2e/internal" and "//internal" cannot reach past
// a prefix. Thread: any (pure functions).

#include <string>
#include <string_view>

namespace bulwark::http {

enum class EscapedSlashes {
  KeepUnchanged,        // %2F and %5C stay as they are (and are not path separators)
  RejectRequest,        // 400
  UnescapeAndRedirect,  // 307 to the path with them decoded
  UnescapeAndForward,   // decoded, then normalised like any separator
};

struct PathOptions {
  bool normalize = true;  // RFC 3986 §6: decode unreserved %XX, remove dot segments, `\` -> `/`
  bool merge_slashes = true;  // "//" -> "/"
  EscapedSlashes escaped_slashes = EscapedSlashes::KeepUnchanged;
};

struct PathResult {
  enum class Action { Forward, Reject, Redirect } action = Action::Forward;
  // Forward with the target as it came (already normal: the common case, no copy made).
  bool unchanged = false;
  std::string path;    // otherwise the path (with its query) to route and forward, or redirect to
  std::string reason;  // why a request is rejected, e.g. "invalid percent-encoding"
};

/** Normalises an origin-form request target ("/a/b?q"); the query is kept as it came. */
PathResult normalizePath(std::string_view target, const PathOptions& options);

}  // namespace bulwark::http
