// The route matcher: request method, path, authority and headers against a route table compiled
// from a config (prefix, exact and regex paths, methods, header matches of every kind including
// inverted ones and :authority, gRPC service and method). Checks that the table picks the first
// route that matches and that prefix and exact routes only match their paths.
// Input: lines "METHOD", "PATH", "AUTHORITY", then "name: value" headers.

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/reload_state.h"
#include "proxy/config/parser.h"
#include "proxy/router/route_entry.h"
#include "tests/fuzz/fuzz_check.h"

namespace bulwark {
namespace {

constexpr std::string_view kRoutes = R"(apiVersion: bulwark.dev/v1alpha1
kind: ProxyConfig
upstreams:
- {name: ranking, protocol: grpc, endpoints: {static: [{address: 127.0.0.1:50051}]}}
- {name: web, endpoints: {static: [{address: 127.0.0.1:8080}]}}
routes:
- name: rank-one-method
  match: {grpc: {service: ranking.v1.RankingService, method: Rank}}
  upstream: ranking
- name: ranking-any-method
  match: {grpc: {service: ranking.v1.RankingService}}
  upstream: ranking
- name: task-create
  match:
    path: {prefix: /v1/tasks}
    methods: [POST]
    headers: [{name: Content-Type, prefix: application/json}]
  upstream: web
- name: task-read
  match:
    path: {regex: "^/v1/tasks/[0-9a-f-]+$"}
    methods: [GET, HEAD]
    headers: [{name: x-debug, present: true, invert: true}]
  upstream: web
- name: recommendations
  match: {path: {exact: /v1/recommendations}, methods: [GET]}
  upstream: web
- name: tenant
  match:
    path: {prefix: /t/}
    headers:
    - {name: x-tenant, regex: "[a-z]{1,8}-[0-9]+"}
    - {name: x-plan, exact: gold, invert: true}
  upstream: web
- name: admin-host
  match: {headers: [{name: ":authority", exact: admin.internal}]}
  upstream: web
- name: fallback
  match: {path: {prefix: /}}
  upstream: web
)";

/** The compiled routes and, in the same order, the match blocks they were compiled from. */
struct CompiledRoutes {
  ReloadableState state;
  router::ListenerConfig listener;
  std::vector<config::RouteMatchSpec> match_specs;
};

/**
 * The listener's route list as the worker matches it (router::ListenerConfig::match), compiled
 * once: it is immutable and matching has no side effects. Entries carry only their route.
 */
const CompiledRoutes& compiled() {
  static const CompiledRoutes* routes = [] {
    auto loaded = config::loadConfigString(kRoutes, "routes.yaml");
    if (!loaded.ok()) {
      std::fprintf(stderr, "route fixture invalid:\n%s\n", loaded.errorText().c_str());
      std::abort();
    }
    auto* c = new CompiledRoutes();
    c->state.beginBuild();
    for (const config::RouteSpec& spec : loaded.config->routes) {
      auto route = router::Route::create(spec, c->state);
      FUZZ_CHECK(route.isOk());
      c->listener.routes.push_back(router::RouteEntry{*route, nullptr, nullptr, {}});
      c->match_specs.push_back(spec.match);
    }
    c->state.endBuild();
    return c;
  }();
  return *routes;
}

std::string_view nextLine(std::string_view& in) {
  const size_t end = in.find('\n');
  std::string_view line = in.substr(0, end);
  in.remove_prefix(end == std::string_view::npos ? in.size() : end + 1);
  return line;
}

}  // namespace
}  // namespace bulwark

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bulwark;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  http::RequestHeaders request;
  request.method = nextLine(in);
  request.path = nextLine(in);
  request.authority = nextLine(in);
  while (!in.empty()) {
    std::string_view line = nextLine(in);
    const size_t colon = line.find(':', 1);  // a leading ':' belongs to a pseudo-header name
    std::string name(line.substr(0, colon));
    http::toLowerInPlace(name);
    std::string value(colon == std::string_view::npos ? std::string_view()
                                                      : line.substr(colon + 1));
    request.headers.add(std::move(name), http::trimOws(value));
  }

  const CompiledRoutes& routes = compiled();
  const router::RouteEntry* matched = routes.listener.match(request);
  const config::RouteMatchSpec* matched_spec = nullptr;
  for (size_t i = 0; i < routes.listener.routes.size(); ++i) {
    const router::RouteEntry& e = routes.listener.routes[i];
    if (&e == matched) {
      matched_spec = &routes.match_specs[i];
      break;
    }
    FUZZ_CHECK(!e.route->matches(request));  // first match wins
  }
  const std::string_view path = std::string_view(request.path).substr(0, request.path.find('?'));
  FUZZ_CHECK(matched != nullptr || !path.starts_with('/'));  // the last route takes any path
  if (matched != nullptr) {
    FUZZ_CHECK(matched_spec != nullptr && matched->route->matches(request));
    using Kind = config::PathMatchSpec::Kind;
    if (matched_spec->path.kind == Kind::Prefix) {
      FUZZ_CHECK(path.starts_with(matched_spec->path.value));
    } else if (matched_spec->path.kind == Kind::Exact) {
      FUZZ_CHECK(path == matched_spec->path.value);
    }
    if (matched_spec->grpc) {
      FUZZ_CHECK(request.isGrpc() && path.starts_with("/ranking.v1.RankingService/"));
    }
  }
  return 0;
}
