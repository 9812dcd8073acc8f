#include "proxy/router/route_table.h"

#include <algorithm>

namespace bulwark::router {

Route::Route(const config::RouteSpec& spec) : spec_(spec) {
  using Kind = config::PathMatchSpec::Kind;
  if (spec_.match.path.kind == Kind::Regex) {
    path_regex_ = std::make_unique<re2::RE2>(spec_.match.path.value);
  }
  for (const auto& h : spec_.match.headers) {
    if (h.kind == config::HeaderMatchSpec::Kind::Regex) {
      header_regexes_.push_back(std::make_unique<re2::RE2>(h.value));
    } else {
      header_regexes_.push_back(nullptr);
    }
  }
  if (spec_.match.grpc) {
    grpc_prefix_ = "/" + spec_.match.grpc->service + "/";
    if (!spec_.match.grpc->method.empty()) grpc_prefix_ += spec_.match.grpc->method;
  }
}

bool Route::matches(const http::RequestHeaders& req) const {
  const auto& m = spec_.match;
  // The query string never takes part in path matching (Envoy's default).
  std::string_view path = req.path;
  if (auto q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);

  using Kind = config::PathMatchSpec::Kind;
  switch (m.path.kind) {
    case Kind::Any:
      break;
    case Kind::Prefix:
      if (path.substr(0, m.path.value.size()) != m.path.value) return false;
      break;
    case Kind::Exact:
      if (path != m.path.value) return false;
      break;
    case Kind::Regex:
      if (!re2::RE2::FullMatch(re2::StringPiece(path.data(), path.size()), *path_regex_)) return false;
      break;
  }
  if (!m.methods.empty() && std::find(m.methods.begin(), m.methods.end(), req.method) == m.methods.end()) {
    return false;
  }
  if (m.grpc) {
    if (!req.isGrpc()) return false;
    if (!spec_.match.grpc->method.empty()) {
      if (path != grpc_prefix_) return false;
    } else if (path.substr(0, grpc_prefix_.size()) != grpc_prefix_) {
      return false;
    }
  }
  for (size_t i = 0; i < m.headers.size(); ++i) {
    const auto& hm = m.headers[i];
    auto value = hm.name == "host" || hm.name == ":authority" ? std::optional<std::string_view>(req.authority)
                                                              : req.headers.get(hm.name);
    bool ok = false;
    using HK = config::HeaderMatchSpec::Kind;
    if (value) {
      switch (hm.kind) {
        case HK::Present: ok = true; break;
        case HK::Exact: ok = *value == hm.value; break;
        case HK::Prefix: ok = value->substr(0, hm.value.size()) == hm.value; break;
        case HK::Regex:
          ok = re2::RE2::FullMatch(re2::StringPiece(value->data(), value->size()), *header_regexes_[i]);
          break;
      }
    }
    if (ok == hm.invert) return false;
  }
  return true;
}

const Route* RouteTable::match(const http::RequestHeaders& headers) const {
  for (const auto& route : routes_) {
    if (route->matches(headers)) return route.get();
  }
  return nullptr;
}

}  // namespace bulwark::router
