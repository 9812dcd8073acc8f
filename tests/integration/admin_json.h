#pragma once

// Reading bulwark's admin JSON (/upstreams, /config) in integration tests. Thread: any (each call
// owns its connection).

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace bulwark::testing {

/** GET `path` on the admin port parsed as JSON; a discarded value when the answer is not JSON. */
nlohmann::json adminJson(uint16_t admin_port, const std::string& path);

/** The /upstreams entry of upstream `name`; null when absent. */
nlohmann::json upstreamJson(uint16_t admin_port, const std::string& name = "backend");

/** The /upstreams host object of `address` in upstream `upstream`; null when absent. */
nlohmann::json hostJson(uint16_t admin_port, const std::string& address,
                        const std::string& upstream = "backend");

}  // namespace bulwark::testing
