#pragma once

// One finished span as bulwark exports it (OpenTelemetry's data model, the parts bulwark uses).
// Thread: value type; built on a worker, handed to the exporter.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "proxy/tracing/trace_context.h"

namespace bulwark::tracing {

struct Span {
  enum class Kind : uint8_t { Server = 2, Client = 3 };  // OTLP SpanKind numbers
  enum class Status : uint8_t { Unset = 0, Ok = 1, Error = 2 };
  using Value = std::variant<std::string, int64_t, bool>;

  TraceId trace_id{};
  SpanId span_id{};
  std::optional<SpanId> parent;
  std::string name;
  Kind kind = Kind::Server;
  uint64_t start_unix_nanos = 0;
  uint64_t end_unix_nanos = 0;
  std::vector<std::pair<std::string, Value>> attributes;
  Status status = Status::Unset;

  void set(std::string key, Value value) {
    attributes.emplace_back(std::move(key), std::move(value));
  }
};

}  // namespace bulwark::tracing
