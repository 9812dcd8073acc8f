#include "proxy/upstream/hash_key.h"

#include "policies/lb/hash.h"
#include "proxy/network/address.h"

namespace bulwark::upstream {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

std::optional<std::string_view> findCookie(const http::HeaderMap& headers, std::string_view name) {
  for (const auto& [header, value] : headers.entries()) {
    if (header != "cookie") {
      continue;
    }
    std::string_view rest = value;
    while (!rest.empty()) {
      size_t semi = rest.find(';');
      std::string_view pair = trim(rest.substr(0, semi));
      rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
      size_t eq = pair.find('=');
      if (eq == std::string_view::npos) {
        continue;
      }
      if (trim(pair.substr(0, eq)) != name) {
        continue;
      }
      std::string_view v = trim(pair.substr(eq + 1));
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') {
        v = v.substr(1, v.size() - 2);
      }
      return v;
    }
  }
  return std::nullopt;
}

std::optional<uint64_t> hashKeyFor(const config::UpstreamSpec& spec,
                                   const http::RequestHeaders& headers,
                                   std::string_view downstream_address) {
  const auto policy = spec.load_balancer.policy;
  if (policy != config::LbPolicy::RingHash && policy != config::LbPolicy::Maglev) {
    return std::nullopt;
  }
  if (!spec.load_balancer.consistent_hash) {
    return std::nullopt;
  }
  const auto& ch = *spec.load_balancer.consistent_hash;
  if (!ch.http_header_name.empty()) {
    if (auto v = headers.headers.get(ch.http_header_name)) {
      return policies::lb::hashKey(*v);
    }
  }
  if (!ch.http_cookie_name.empty()) {
    if (auto v = findCookie(headers.headers, ch.http_cookie_name)) {
      return policies::lb::hashKey(*v);
    }
  }
  if (ch.use_source_ip && !downstream_address.empty()) {
    return policies::lb::hashKey(network::addressIp(downstream_address));
  }
  return std::nullopt;
}

}  // namespace bulwark::upstream
