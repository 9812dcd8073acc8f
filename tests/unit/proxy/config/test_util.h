#pragma once

// Helpers shared by the config tests. Thread: test main thread.

#include <string>
#include <vector>

#include "proxy/config/parser.h"

namespace bulwark::config::test {

inline std::string dataPath(const std::string& relative) {
  return std::string(BULWARK_TEST_DATA_DIR) + "/config/" + relative;
}

/** Every diagnostic formatted, one per element. */
inline std::vector<std::string> formatted(const LoadResult& result) {
  std::vector<std::string> lines;
  for (const ConfigDiagnostic& d : result.diagnostics) {
    lines.push_back(d.format());
  }
  return lines;
}

inline LoadResult loadText(const std::string& text) { return loadConfigString(text, "test.yaml"); }

/** A valid header + listener + upstream, to which a test appends routes or sections. */
inline constexpr const char* kPreamble = R"(apiVersion: bulwark.dev/v1alpha1
kind: ProxyConfig
listeners:
- name: main
  address: 127.0.0.1:0
upstreams:
- name: backend
  endpoints:
    static: [{address: 127.0.0.1:8081}]
- name: grpc-backend
  protocol: grpc
  endpoints:
    static: [{address: 127.0.0.1:50051}]
)";

}  // namespace bulwark::config::test
