#include "tests/integration/config_builder.h"

#include <sstream>

namespace bulwark::testing {

ConfigBuilder& ConfigBuilder::concurrency(int workers) {
  concurrency_ = workers;
  return *this;
}

ConfigBuilder& ConfigBuilder::drain(const std::string& min_duration, const std::string& timeout) {
  drain_min_ = min_duration;
  drain_timeout_ = timeout;
  return *this;
}

ConfigBuilder& ConfigBuilder::runtimeExtra(const std::string& flow_entries) {
  runtime_extra_ += ", " + flow_entries;
  return *this;
}

ConfigBuilder& ConfigBuilder::adminAddress(const std::string& address) {
  admin_address_ = address;
  return *this;
}

ConfigBuilder& ConfigBuilder::adminExtra(const std::string& flow_entries) {
  admin_extra_ += ", " + flow_entries;
  return *this;
}

ConfigBuilder& ConfigBuilder::topLevel(const std::string& yaml) {
  top_level_ += yaml;
  return *this;
}

ConfigBuilder& ConfigBuilder::listener(const std::string& protocol, const std::string& extra,
                                       const std::string& name, const std::string& address) {
  listeners_ +=
      "- name: " + name + "\n  address: " + address + "\n  protocol: " + protocol + "\n" + extra;
  return *this;
}

ConfigBuilder& ConfigBuilder::upstream(const std::string& protocol,
                                       const std::vector<std::string>& endpoints,
                                       const std::string& extra, const std::string& name) {
  std::vector<WeightedEndpoint> unweighted;
  for (const auto& address : endpoints) {
    unweighted.push_back({address, 0});
  }
  return weightedUpstream(protocol, unweighted, extra, name);
}

ConfigBuilder& ConfigBuilder::weightedUpstream(const std::string& protocol,
                                               const std::vector<WeightedEndpoint>& endpoints,
                                               const std::string& extra, const std::string& name) {
  std::ostringstream y;
  y << "- name: " << name << "\n  protocol: " << protocol << "\n  endpoints:\n    static:\n";
  for (const auto& ep : endpoints) {
    y << "    - address: \"" << ep.address << "\"\n";
    if (ep.weight > 0) {
      y << "      weight: " << ep.weight << "\n";
    }
  }
  upstreams_ += y.str() + extra;
  return *this;
}

ConfigBuilder& ConfigBuilder::dnsUpstream(const std::string& protocol, const std::string& dns_name,
                                          uint16_t port, const std::string& refresh_interval,
                                          const std::string& extra, const std::string& name) {
  upstreams_ += "- name: " + name + "\n  protocol: " + protocol +
                "\n  endpoints:\n    dns: {name: " + dns_name + ", port: " + std::to_string(port) +
                ", refreshInterval: " + refresh_interval + "}\n" + extra;
  return *this;
}

ConfigBuilder& ConfigBuilder::route(const std::string& extra, const std::string& prefix,
                                    const std::string& name, const std::string& upstream) {
  routes_ += "- name: " + name + "\n  match: {path: {prefix: " + prefix +
             "}}\n  upstream: " + upstream + "\n" + extra;
  return *this;
}

ConfigBuilder& ConfigBuilder::rawRoute(const std::string& yaml) {
  routes_ += yaml;
  return *this;
}

std::string ConfigBuilder::yaml() const {
  std::ostringstream y;
  y << "apiVersion: bulwark.dev/v1alpha1\n"
    << "kind: ProxyConfig\n"
    << "metadata: {name: test}\n"
    << "admin: {address: " << admin_address_ << admin_extra_ << "}\n"
    << "runtime: {concurrency: " << concurrency_ << ", drain: {minDuration: " << drain_min_
    << ", timeout: " << drain_timeout_ << "}" << runtime_extra_ << "}\n"
    << top_level_ << "listeners:\n"
    << listeners_ << "upstreams:\n"
    << upstreams_ << "routes:\n"
    << routes_;
  return y.str();
}

std::string simpleConfig(const std::string& listener_protocol, const std::string& upstream_protocol,
                         const std::vector<std::string>& endpoints, const std::string& route_extra,
                         const std::string& listener_extra, const std::string& top_extra) {
  return ConfigBuilder()
      .topLevel(top_extra)
      .listener(listener_protocol, listener_extra)
      .upstream(upstream_protocol, endpoints)
      .route(route_extra)
      .yaml();
}

}  // namespace bulwark::testing
