#include "tests/integration/admin_json.h"

#include "tests/support/admin_client.h"

namespace bulwark::testing {

nlohmann::json adminJson(uint16_t admin_port, const std::string& path) {
  auto r = adminGet(admin_port, path);
  if (!r.ok || r.status != 200) {
    return nlohmann::json::value_t::discarded;
  }
  return nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
}

nlohmann::json upstreamJson(uint16_t admin_port, const std::string& name) {
  auto all = adminJson(admin_port, "/upstreams");
  if (!all.is_array()) {
    return nullptr;
  }
  for (const auto& u : all) {
    if (u.value("name", "") == name) {
      return u;
    }
  }
  return nullptr;
}

nlohmann::json hostJson(uint16_t admin_port, const std::string& address,
                        const std::string& upstream) {
  auto u = upstreamJson(admin_port, upstream);
  if (!u.is_object() || !u.contains("hosts")) {
    return nullptr;
  }
  for (const auto& h : u["hosts"]) {
    if (h.value("address", "") == address) {
      return h;
    }
  }
  return nullptr;
}

}  // namespace bulwark::testing
