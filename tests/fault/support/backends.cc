#include "tests/fault/support/backends.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tests/support/admin_client.h"

namespace bulwark::testing::fault {

using namespace std::chrono_literals;

bool Replica::setFault(const std::string& json) const {
  auto r = adminPost(control_port, "/_fault", json, deadlineIn(2s));
  return r.ok && r.status == 200;
}

std::unique_ptr<Replica> spawnRecommendation(const std::string& id,
                                             const std::vector<std::string>& extra,
                                             std::string* error) {
  ProcessOptions options;
  options.path = RECOMMENDATION_SERVER_PATH;
  options.args = {"--port",         "0", "--replica-id",       id,
                  "--control-port", "0", "--items-per-tenant", "500"};
  options.args.insert(options.args.end(), extra.begin(), extra.end());
  auto replica = std::make_unique<Replica>();
  replica->id = id;
  replica->process = ChildProcess::spawn(options, error);
  if (!replica->process) {
    return nullptr;
  }
  auto port = replica->process->waitForListeningPort(deadlineIn(15s));
  auto control =
      replica->process->waitForLine(std::regex(R"(control port: (\d+))"), deadlineIn(15s));
  if (!port || !control) {
    *error = id + " did not announce its ports:\n" + replica->process->output();
    return nullptr;
  }
  replica->port = *port;
  replica->control_port = static_cast<uint16_t>(std::stoi((*control)[1]));
  return replica;
}

std::string recommendationConfig(const std::vector<std::string>& endpoints,
                                 const std::function<void(YAML::Node&)>& edit) {
  YAML::Node root = YAML::LoadFile(BULWARK_SOURCE_DIR "/examples/recommendation/bulwark.yaml");
  root["admin"]["address"] = "127.0.0.1:0";
  for (YAML::Node listener : root["listeners"]) {
    listener["address"] = "127.0.0.1:0";
  }
  for (YAML::Node upstream : root["upstreams"]) {
    YAML::Node list(YAML::NodeType::Sequence);
    for (const auto& e : endpoints) {
      YAML::Node ep;
      ep["address"] = e;
      list.push_back(ep);
    }
    upstream["endpoints"]["static"] = list;
  }
  if (edit) {
    edit(root);
  }
  YAML::Emitter out;
  out << root;
  return out.c_str();
}

Http1Request recommendRequest(const std::string& tenant, uint64_t user) {
  return http1Request(
      "POST", "/v1/recommend", {{"x-tenant-id", tenant}, {"content-type", "application/json"}},
      R"({"surface":"home","user_id":"u-)" + std::to_string(user % 1000) + R"(","k":10})");
}

namespace {

std::optional<nlohmann::json> upstreamJson(uint16_t admin_port, const std::string& upstream) {
  auto r = adminGet(admin_port, "/upstreams", deadlineIn(2s));
  if (!r.ok || r.status != 200) {
    return std::nullopt;
  }
  auto json = nlohmann::json::parse(r.body, nullptr, false);
  if (json.is_discarded()) {
    return std::nullopt;
  }
  // Either an array of upstreams or {"upstreams": [...]}.
  const nlohmann::json& list =
      json.is_object() && json.contains("upstreams") ? json["upstreams"] : json;
  for (const auto& u : list) {
    if (u.value("name", "") == upstream) {
      return u;
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> hostHealth(uint16_t admin_port, const std::string& upstream,
                                      const std::string& address) {
  auto u = upstreamJson(admin_port, upstream);
  if (!u) {
    return std::nullopt;
  }
  for (const auto& h : (*u)["hosts"]) {
    if (h.value("address", "") == address) {
      return h.value("health", "");
    }
  }
  return std::nullopt;
}

std::optional<std::string> breakerState(uint16_t admin_port, const std::string& upstream,
                                        const std::string& address) {
  auto u = upstreamJson(admin_port, upstream);
  if (!u) {
    return std::nullopt;
  }
  if (address.empty()) {
    if (!u->contains("circuitBreaker")) {
      return std::nullopt;
    }
    return (*u)["circuitBreaker"].value("state", "");
  }
  for (const auto& h : (*u)["hosts"]) {
    if (h.value("address", "") == address && h.contains("circuitBreaker")) {
      return h["circuitBreaker"].value("state", "");
    }
  }
  return std::nullopt;
}

uint64_t peakRssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      std::istringstream fields(line.substr(6));
      uint64_t kib = 0;
      fields >> kib;
      return kib;
    }
  }
  return 0;
}

}  // namespace bulwark::testing::fault
