#include "proxy/config/effective_json.h"

#include <algorithm>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "proxy/config/duration.h"
#include "proxy/config/parser.h"

namespace bulwark::config {
namespace {

using nlohmann::json;

template <typename T>
struct IsOptional : std::false_type {};
template <typename T>
struct IsOptional<std::optional<T>> : std::true_type {};
template <typename T>
struct IsVector : std::false_type {};
template <typename T>
struct IsVector<std::vector<T>> : std::true_type {};

/** Writes the fields a spec struct lists (spec.h, `fields(v)`) into a JSON object. */
class JsonWriter {
public:
  explicit JsonWriter(json& out) : out_(out) {}

  template <typename T>
  void operator()(std::string_view name, const T& value) {
    if constexpr (IsOptional<T>::value) {
      if (value) {
        (*this)(name, *value);
      }
    } else {
      out_[std::string(name)] = toJsonValue(value);
    }
  }
  template <typename F>
  void group(std::string_view name, F&& fill) {
    json sub = json::object();
    JsonWriter writer(sub);
    fill(writer);
    out_[std::string(name)] = std::move(sub);
  }
  template <typename F>
  void when(bool condition, F&& fill) {
    if (condition) {
      fill(*this);
    }
  }

  template <typename T>
  static json toJsonValue(const T& value) {
    if constexpr (requires(JsonWriter & w) { value.fields(w); }) {
      json object = json::object();
      JsonWriter writer(object);
      value.fields(writer);
      return object;
    } else if constexpr (std::is_same_v<T, Duration>) {
      return formatDuration(value);
    } else if constexpr (std::is_enum_v<T>) {
      return std::string(toString(value));
    } else if constexpr (std::is_same_v<T, std::vector<std::pair<std::string, std::string>>>) {
      json object = json::object();  // header lists print as a map
      for (const auto& [key, item] : value) {
        object[key] = item;
      }
      return object;
    } else if constexpr (IsVector<T>::value) {
      json array = json::array();
      for (const auto& item : value) {
        array.push_back(toJsonValue(item));
      }
      return array;
    } else {
      return json(value);
    }
  }

private:
  json& out_;
};

}  // namespace

std::string_view toString(ListenerProtocol protocol) {
  switch (protocol) {
    case ListenerProtocol::Http1: return "http1";
    case ListenerProtocol::H2c: return "h2c";
    case ListenerProtocol::Auto: return "auto";
  }
  return "auto";
}

std::string_view toString(UpstreamProtocol protocol) {
  switch (protocol) {
    case UpstreamProtocol::Http1: return "http1";
    case UpstreamProtocol::Http2: return "http2";
    case UpstreamProtocol::Grpc: return "grpc";
  }
  return "http1";
}

std::string_view toString(LbPolicy policy) {
  switch (policy) {
    case LbPolicy::RoundRobin: return "ROUND_ROBIN";
    case LbPolicy::LeastRequest: return "LEAST_REQUEST";
    case LbPolicy::Random: return "RANDOM";
    case LbPolicy::RingHash: return "RING_HASH";
    case LbPolicy::Maglev: return "MAGLEV";
    case LbPolicy::PeakEwma: return "PEAK_EWMA";
  }
  return "ROUND_ROBIN";
}

std::string_view toString(Jitter jitter) {
  switch (jitter) {
    case Jitter::Full: return "full";
    case Jitter::Equal: return "equal";
    case Jitter::None: return "none";
  }
  return "full";
}

std::string_view toString(NonIdempotentPolicy policy) {
  switch (policy) {
    case NonIdempotentPolicy::Never: return "never";
    case NonIdempotentPolicy::WithIdempotencyKey: return "withIdempotencyKey";
    case NonIdempotentPolicy::Always: return "always";
  }
  return "never";
}

std::string dumpJson(const nlohmann::json& json, int indent) {
  return json.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

nlohmann::json toJson(const ProxyConfigSpec& spec) {
  json j = JsonWriter::toJsonValue(spec);
  j["apiVersion"] = kApiVersion;
  j["kind"] = kKind;
  return j;
}

std::optional<nlohmann::json> explainRoute(const ProxyConfigSpec& spec, std::string_view route) {
  const nlohmann::json effective = toJson(spec);
  nlohmann::json out = nlohmann::json::object();
  for (const auto& r : effective.value("routes", nlohmann::json::array())) {
    if (r.value("name", "") == route) {
      out["route"] = r;
    }
  }
  if (!out.contains("route")) {
    return std::nullopt;
  }
  const std::string upstream = out["route"].value("upstream", "");
  for (const auto& u : effective.value("upstreams", nlohmann::json::array())) {
    if (u.value("name", "") == upstream) {
      out["upstream"] = u;
    }
  }
  out["listeners"] = nlohmann::json::array();
  for (const ListenerSpec& l : spec.listeners) {
    if (l.routes.empty() || std::find(l.routes.begin(), l.routes.end(), route) != l.routes.end()) {
      out["listeners"].push_back(l.name);
    }
  }
  return out;
}

}  // namespace bulwark::config
