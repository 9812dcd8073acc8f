#pragma once

// The effective config (defaults and inheritance resolved) as JSON in the schema's camelCase
// names, durations as GEP-2257 strings ("250ms"). Used by `bulwark check --print-effective`
// and the admin `/config` endpoint. The output is itself a valid config file.
// Thread: any (pure function).

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "proxy/config/spec.h"

namespace bulwark::config {

nlohmann::json toJson(const ProxyConfigSpec& spec);

/**
 * One route as `bulwark check --explain` and the admin `/explain/route` show it: {"route": its
 * effective block (defaults applied: timeouts, retries with budget, limits, fallback), "upstream":
 * its upstream's (balancer, breaker, outlier detection, pools), "listeners": the listeners that
 * serve it}. nullopt when no route has that name.
 */
std::optional<nlohmann::json> explainRoute(const ProxyConfigSpec& spec, std::string_view route);

/**
 * JSON text of `json` (indented by `indent`, -1 for one line) that never throws: YAML strings
 * may hold bytes that are not UTF-8 (yaml-cpp passes them through), which nlohmann's dump()
 * rejects with an exception; here each becomes U+FFFD.
 */
std::string dumpJson(const nlohmann::json& json, int indent = 2);

/** Schema spellings of enum values, shared with messages elsewhere. */
std::string_view toString(ListenerProtocol protocol);
std::string_view toString(UpstreamProtocol protocol);
std::string_view toString(LbPolicy policy);
std::string_view toString(Jitter jitter);
std::string_view toString(NonIdempotentPolicy policy);

}  // namespace bulwark::config
