#include "proxy/config/validate.h"

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

#include "proxy/config/address.h"
#include "proxy/config/duration.h"
#include "proxy/config/suggest.h"

namespace bulwark::config {
namespace {

template <typename Item>
void checkUniqueNames(LoadContext& ctx, const std::vector<Item>& items, std::string_view section,
                      std::string_view what) {
  std::map<std::string, size_t> first;
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string& name = items[i].name;
    if (name.empty()) {
      continue;
    }
    auto [it, inserted] = first.emplace(name, i);
    if (!inserted) {
      const std::string path = fmt::format("{}[{}].name", section, i);
      const Mark first_mark = ctx.marks.find(fmt::format("{}[{}].name", section, it->second));
      ctx.sink.error(ctx.marks.find(path), path,
                     fmt::format("duplicate {} name \"{}\" (first defined on line {})", what, name,
                                 first_mark.line),
                     codes::kDuplicateName);
    }
  }
}

template <typename Item>
std::vector<std::string> namesOf(const std::vector<Item>& items, bool& all_named) {
  std::vector<std::string> names;
  all_named = true;
  for (const Item& item : items) {
    if (item.name.empty()) {
      all_named = false;
    } else {
      names.push_back(item.name);
    }
  }
  return names;
}

/** Reports a reference to a name that does not exist, unless an unnamed item could be it. */
void checkReference(LoadContext& ctx, const std::string& path, const std::string& name,
                    const std::vector<std::string>& names, bool all_named, std::string_view what) {
  if (name.empty() || std::find(names.begin(), names.end(), name) != names.end() || !all_named) {
    return;
  }
  ctx.sink.error(ctx.marks.find(path), path,
                 fmt::format("unknown {} \"{}\"{}", what, name, didYouMean(name, names)),
                 codes::kDanglingReference);
}

struct BoundAddress {
  HostPort address;
  std::string path;
  std::string text;
};

bool collides(const HostPort& a, const HostPort& b) {
  if (a.port == 0 || a.port != b.port) {
    return false;  // port 0 asks the kernel for a free port: never a collision
  }
  return a.host == b.host || a.isWildcard() || b.isWildcard();
}

/** Parses a listen address (admin or listener): IP literal, port 0-65535. */
std::optional<HostPort> checkListenAddress(LoadContext& ctx, const std::string& path,
                                           const std::string& text) {
  if (text.empty()) {
    return std::nullopt;
  }
  auto parsed = parseHostPort(text);
  if (!parsed) {
    ctx.sink.error(ctx.marks.find(path), path, parsed.error(), codes::kInvalidValue);
    return std::nullopt;
  }
  if (parsed->kind == HostPort::Kind::Name) {
    ctx.sink.error(ctx.marks.find(path), path,
                   fmt::format("must be an IP address such as \"127.0.0.1:{}\", got the host "
                               "name \"{}\"",
                               parsed->port, parsed->host),
                   codes::kInvalidValue);
    return std::nullopt;
  }
  return *parsed;
}

void checkAddresses(LoadContext& ctx, const ProxyConfigSpec& spec) {
  std::vector<BoundAddress> bound;
  if (auto admin = checkListenAddress(ctx, "admin.address", spec.admin.address)) {
    bound.push_back({*admin, "admin.address", spec.admin.address});
  }
  for (size_t i = 0; i < spec.listeners.size(); ++i) {
    const std::string path = fmt::format("listeners[{}].address", i);
    auto address = checkListenAddress(ctx, path, spec.listeners[i].address);
    if (!address) {
      continue;
    }
    for (const BoundAddress& other : bound) {
      if (collides(*address, other.address)) {
        ctx.sink.error(ctx.marks.find(path), path,
                       fmt::format(R"(address "{}" collides with {} "{}")",
                                   spec.listeners[i].address, other.path, other.text),
                       codes::kAddressConflict);
        break;
      }
    }
    bound.push_back({*address, path, spec.listeners[i].address});
  }
}

void checkEndpoints(LoadContext& ctx, const ProxyConfigSpec& spec) {
  for (size_t i = 0; i < spec.upstreams.size(); ++i) {
    const UpstreamSpec& u = spec.upstreams[i];
    const std::string base = fmt::format("upstreams[{}]", i);
    if (u.static_endpoints.empty() && !u.dns) {
      const std::string path = base + ".endpoints";
      ctx.sink.error(ctx.marks.find(path), path,
                     "needs at least one endpoint (endpoints.static or endpoints.dns)",
                     codes::kMissingField);
    }
    for (size_t j = 0; j < u.static_endpoints.size(); ++j) {
      const std::string& text = u.static_endpoints[j].address;
      if (text.empty()) {
        continue;
      }
      const std::string path = fmt::format("{}.endpoints.static[{}].address", base, j);
      auto parsed = parseHostPort(text);
      if (!parsed) {
        ctx.sink.error(ctx.marks.find(path), path, parsed.error(), codes::kInvalidValue);
      } else if (parsed->port == 0) {
        ctx.sink.error(
            ctx.marks.find(path), path,
            fmt::format("an endpoint needs a port between 1 and 65535, got \"{}\"", text),
            codes::kInvalidValue);
      }
    }
  }
}

const UpstreamSpec* findUpstream(const ProxyConfigSpec& spec, const std::string& name) {
  for (const UpstreamSpec& u : spec.upstreams) {
    if (!name.empty() && u.name == name) {
      return &u;
    }
  }
  return nullptr;
}

/** Where a route's effective block came from: its own block or `defaults`. */
struct BlockSource {
  std::string mark_path;  // for the mark lookup
  std::string suffix;     // appended to messages about inherited blocks
};

BlockSource sourceOf(const LoadContext& ctx, const std::string& route_path,
                     std::string_view block) {
  const std::string own = fmt::format("{}.{}", route_path, block);
  if (ctx.marks.has(own)) {
    return {own, ""};
  }
  return {fmt::format("defaults.{}", block), " (inherited from defaults)"};
}

/** perTryTimeout within the request timeout, and retries that can actually start. */
void checkRetryTiming(LoadContext& ctx, const RetriesSpec& r, const TimeoutsSpec& t,
                      const std::string& path, const std::string& mark_path,
                      const std::string& suffix) {
  if (r.per_try_timeout.count() == 0 || t.request.count() == 0) {
    return;
  }
  const std::string field_path = path + ".perTryTimeout";
  const Mark mark = ctx.marks.find(mark_path + ".perTryTimeout");
  if (r.per_try_timeout > t.request) {
    ctx.sink.error(
        mark, field_path,
        fmt::format("perTryTimeout {} is longer than timeouts.request {}{}",
                    formatDuration(r.per_try_timeout), formatDuration(t.request), suffix),
        codes::kInconsistentValues);
  } else if (r.attempts > 1 && r.per_try_timeout + r.backoff.base_interval >= t.request) {
    ctx.sink.warning(
        mark, field_path,
        fmt::format("no retry can start: perTryTimeout {} plus backoff {} uses up "
                    "timeouts.request {}{}",
                    formatDuration(r.per_try_timeout), formatDuration(r.backoff.base_interval),
                    formatDuration(t.request), suffix),
        codes::kIneffectiveSetting);
  }
}

bool contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

void validateNames(LoadContext& ctx, const ProxyConfigSpec& spec) {
  checkUniqueNames(ctx, spec.listeners, "listeners", "listener");
  checkUniqueNames(ctx, spec.upstreams, "upstreams", "upstream");
  checkUniqueNames(ctx, spec.routes, "routes", "route");

  bool all_upstreams_named = true;
  bool all_routes_named = true;
  const std::vector<std::string> upstream_names = namesOf(spec.upstreams, all_upstreams_named);
  const std::vector<std::string> route_names = namesOf(spec.routes, all_routes_named);

  for (size_t i = 0; i < spec.routes.size(); ++i) {
    const RouteSpec& route = spec.routes[i];
    checkReference(ctx, fmt::format("routes[{}].upstream", i), route.upstream, upstream_names,
                   all_upstreams_named, "upstream");
    const UpstreamSpec* upstream = findUpstream(spec, route.upstream);
    if (route.match.grpc && upstream != nullptr && upstream->protocol == UpstreamProtocol::Http1) {
      const std::string path = fmt::format("routes[{}].match.grpc", i);
      ctx.sink.error(ctx.marks.find(path), path,
                     fmt::format("gRPC needs an HTTP/2 upstream, but upstream \"{}\" has "
                                 "protocol http1 (use grpc or http2)",
                                 upstream->name),
                     codes::kInconsistentValues);
    }
    if (!route.upgrades.empty() && upstream != nullptr &&
        upstream->protocol != UpstreamProtocol::Http1) {
      // Tunnelling over HTTP/2 needs extended CONNECT (RFC 8441) on the upstream side, which is
      // not spoken: refuse the config rather than fail every upgrade at run time.
      const std::string path = fmt::format("routes[{}].upgrades", i);
      ctx.sink.error(ctx.marks.find(path), path,
                     fmt::format("upgrades are tunnelled over HTTP/1.1 only, but upstream \"{}\" "
                                 "has protocol {} (use http1)",
                                 upstream->name,
                                 upstream->protocol == UpstreamProtocol::Grpc ? "grpc" : "http2"),
                     codes::kInconsistentValues);
    }
  }
  for (size_t i = 0; i < spec.listeners.size(); ++i) {
    std::set<std::string> seen;
    for (size_t j = 0; j < spec.listeners[i].routes.size(); ++j) {
      const std::string& name = spec.listeners[i].routes[j];
      const std::string path = fmt::format("listeners[{}].routes[{}]", i, j);
      checkReference(ctx, path, name, route_names, all_routes_named, "route");
      if (!seen.insert(name).second) {
        ctx.sink.error(ctx.marks.find(path), path,
                       fmt::format("route \"{}\" is listed twice", name), codes::kDuplicateName);
      }
    }
  }
  for (size_t j = 0; j < spec.admin.require_upstreams.size(); ++j) {
    checkReference(ctx, fmt::format("admin.readiness.requireUpstreams[{}]", j),
                   spec.admin.require_upstreams[j], upstream_names, all_upstreams_named,
                   "upstream");
  }
  checkAddresses(ctx, spec);
  checkEndpoints(ctx, spec);
}

/** Blocks that share state through Redis need the top-level `redis` block. */
void checkRedisUsers(LoadContext& ctx, const ProxyConfigSpec& spec) {
  if (spec.redis) {
    return;
  }
  for (size_t i = 0; i < spec.routes.size(); ++i) {
    const PolicyBlocks& p = spec.routes[i].policies;
    const std::string route_path = fmt::format("routes[{}]", i);
    auto report = [&](std::string_view block, const std::string& field, std::string_view what) {
      const BlockSource source = sourceOf(ctx, route_path, block);
      ctx.sink.error(
          ctx.marks.find(source.mark_path + "." + field),
          fmt::format("{}.{}.{}", route_path, block, field),
          fmt::format("{} needs the top-level redis block (its address){}", what, source.suffix),
          codes::kMissingField);
    };
    if (p.rate_limit && p.rate_limit->scope == "global") {
      report("rateLimit", "scope", "a global rate limit");
    }
    if (p.idempotency && p.idempotency->dedupe_enabled && p.idempotency->dedupe_store == "redis") {
      report("idempotency", "dedupe.store", "a Redis idempotency store");
    }
  }
}

void validateEffective(LoadContext& ctx, const ProxyConfigSpec& spec) {
  checkRedisUsers(ctx, spec);
  if (spec.defaults.retries) {
    checkRetryTiming(ctx, *spec.defaults.retries, spec.defaults.timeouts.value_or(TimeoutsSpec{}),
                     "defaults.retries", "defaults.retries", "");
  }
  for (size_t i = 0; i < spec.routes.size(); ++i) {
    const RouteSpec& route = spec.routes[i];
    const std::string route_path = fmt::format("routes[{}]", i);
    if (!route.policies.retries || !route.policies.timeouts) {
      continue;  // applyInheritance always sets both
    }
    const RetriesSpec& r = *route.policies.retries;
    const BlockSource retries_source = sourceOf(ctx, route_path, "retries");
    const bool own_timeouts = ctx.marks.has(route_path + ".timeouts");
    // When both blocks come from defaults the check above already ran once.
    if (retries_source.suffix.empty() || own_timeouts) {
      checkRetryTiming(ctx, r, *route.policies.timeouts, route_path + ".retries",
                       retries_source.mark_path, retries_source.suffix);
    }

    const UpstreamSpec* upstream = findUpstream(spec, route.upstream);
    const bool grpc_route =
        route.match.grpc || (upstream != nullptr && upstream->protocol == UpstreamProtocol::Grpc);
    const std::string retry_on_path = route_path + ".retries.retryOn";
    const Mark retry_on_mark = ctx.marks.find(retries_source.mark_path + ".retryOn");
    if (grpc_route && contains(r.retry_on, "5xx")) {
      ctx.sink.warning(retry_on_mark, retry_on_path,
                       fmt::format("\"5xx\" never matches on a gRPC route: gRPC errors arrive as "
                                   "HTTP 200 with a grpc-status (use unavailable, internal, "
                                   "...){}",
                                   retries_source.suffix),
                       codes::kGrpcRetryOn5xx);
    }

    std::string unsafe_method;
    for (const char* method : {"POST", "PATCH"}) {
      if (unsafe_method.empty() && contains(route.match.methods, method)) {
        unsafe_method = method;
      }
    }
    std::string unsafe_token;
    for (const char* token :
         {"5xx", "gateway-error", "reset", "retriable-4xx", "retriable-status-codes"}) {
      if (unsafe_token.empty() && contains(r.retry_on, token)) {
        unsafe_token = token;
      }
    }
    if (!unsafe_method.empty() && !unsafe_token.empty() && r.attempts > 1 &&
        !route.policies.idempotency && r.non_idempotent != NonIdempotentPolicy::Always) {
      ctx.sink.warning(retry_on_mark, retry_on_path,
                       fmt::format("{} route retries on \"{}\" without an idempotency block; "
                                   "only connect-failure and refused-stream will be retried{}",
                                   unsafe_method, unsafe_token, retries_source.suffix),
                       codes::kUnsafeRetry);
    }
  }
}

}  // namespace bulwark::config
