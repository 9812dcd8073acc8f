#include "examples/common/fault_spec.h"

#include <cmath>
#include <numbers>
#include <sstream>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace bulwark::examples {
namespace {

std::vector<std::string> splitColon(const std::string& text) {
  std::vector<std::string> parts;
  std::string current;
  for (char c : text) {
    if (c == ':') {
      parts.push_back(current);
      current.clear();
    } else {
      current.push_back(c);
    }
  }
  parts.push_back(current);
  return parts;
}

std::optional<double> parseNumber(const std::string& text) {
  if (text.empty()) {
    return std::nullopt;
  }
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

std::string formatNumber(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

bool validRate(double rate) { return rate >= 0 && rate <= 1; }

// Reads an optional field of `json` into `out` when present; false (with `error`) on a wrong type.
bool readDouble(const nlohmann::json& json, const char* name, double& out, std::string& error) {
  auto it = json.find(name);
  if (it == json.end() || it->is_null()) {
    return true;
  }
  if (!it->is_number()) {
    error = std::string(name) + " must be a number";
    return false;
  }
  out = it->get<double>();
  return true;
}

bool readInt(const nlohmann::json& json, const char* name, int64_t& out, std::string& error) {
  auto it = json.find(name);
  if (it == json.end() || it->is_null()) {
    return true;
  }
  if (!it->is_number_integer()) {
    error = std::string(name) + " must be an integer";
    return false;
  }
  out = it->get<int64_t>();
  return true;
}

}  // namespace

double sampleStandardNormal(policies::Random& random) {
  // 1 - u keeps the logarithm's argument in (0, 1].
  double u1 = 1.0 - random.uniform01();
  double u2 = random.uniform01();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

Result<LatencyDistribution> LatencyDistribution::parse(const std::string& text) {
  LatencyDistribution d;
  if (text.empty() || text == "none") {
    return d;
  }
  auto parts = splitColon(text);
  const std::string& kind = parts[0];
  std::vector<double> values;
  for (size_t i = 1; i < parts.size(); ++i) {
    auto v = parseNumber(parts[i]);
    if (!v || *v < 0) {
      return Status::error("latency distribution '" + text + "': '" + parts[i] +
                           "' is not a non-negative number");
    }
    values.push_back(*v);
  }
  auto expect = [&](size_t n, const char* form) -> Status {
    if (values.size() != n) {
      return Status::error("latency distribution '" + text + "': expected " + form);
    }
    return Status::ok();
  };
  if (kind == "exp") {
    if (auto s = expect(1, "exp:MEAN_MS"); !s) {
      return s;
    }
    d.kind = Kind::Exponential;
    d.a = values[0];
  } else if (kind == "uniform") {
    if (auto s = expect(2, "uniform:MIN_MS:MAX_MS"); !s) {
      return s;
    }
    if (values[0] > values[1]) {
      return Status::error("latency distribution '" + text + "': MIN_MS > MAX_MS");
    }
    d.kind = Kind::Uniform;
    d.a = values[0];
    d.b = values[1];
  } else if (kind == "normal") {
    if (auto s = expect(2, "normal:MEAN_MS:STDDEV_MS"); !s) {
      return s;
    }
    d.kind = Kind::Normal;
    d.a = values[0];
    d.b = values[1];
  } else if (kind == "lognormal") {
    if (auto s = expect(2, "lognormal:MEDIAN_MS:SIGMA"); !s) {
      return s;
    }
    d.kind = Kind::LogNormal;
    d.a = values[0];
    d.b = values[1];
  } else {
    return Status::error("latency distribution '" + text +
                         "': kind must be none, exp, uniform, normal or lognormal");
  }
  return d;
}

std::string LatencyDistribution::toString() const {
  switch (kind) {
    case Kind::None: return "";
    case Kind::Exponential: return "exp:" + formatNumber(a);
    case Kind::Uniform: return "uniform:" + formatNumber(a) + ":" + formatNumber(b);
    case Kind::Normal: return "normal:" + formatNumber(a) + ":" + formatNumber(b);
    case Kind::LogNormal: return "lognormal:" + formatNumber(a) + ":" + formatNumber(b);
  }
  return "";
}

double LatencyDistribution::sampleMs(policies::Random& random) const {
  switch (kind) {
    case Kind::None: return 0;
    case Kind::Exponential: return -a * std::log(1.0 - random.uniform01());
    case Kind::Uniform: return a + (b - a) * random.uniform01();
    case Kind::Normal: return std::max(0.0, a + b * sampleStandardNormal(random));
    case Kind::LogNormal: return a * std::exp(b * sampleStandardNormal(random));
  }
  return 0;
}

Status FaultSpec::validate() const {
  if (!validRate(error_rate)) {
    return Status::error("error_rate must be in [0, 1]");
  }
  if (!validRate(hang_rate)) {
    return Status::error("hang_rate must be in [0, 1]");
  }
  if (!validRate(reset_rate)) {
    return Status::error("reset_rate must be in [0, 1]");
  }
  if (error_http_status < 400 || error_http_status > 599) {
    return Status::error("error_http_status must be in [400, 599]");
  }
  if (error_grpc_code < 1 || error_grpc_code > 16) {
    return Status::error("error_grpc_code must be in [1, 16]");
  }
  if (retry_after) {
    if (retry_after->empty() || retry_after->find_first_of("\r\n") != std::string::npos) {
      return Status::error("retry_after must be a non-empty header value");
    }
  }
  if (grpc_pushback_ms && *grpc_pushback_ms < 0) {
    return Status::error("grpc_pushback_ms must be >= 0");
  }
  if (!(latency_fixed_ms >= 0) || !std::isfinite(latency_fixed_ms)) {
    return Status::error("latency_fixed_ms must be >= 0");
  }
  if (slow_body_bytes_per_sec < 0) {
    return Status::error("slow_body_bytes_per_sec must be >= 0");
  }
  return Status::ok();
}

bool FaultSpec::inactive() const {
  return error_rate == 0 && hang_rate == 0 && reset_rate == 0 && latency_fixed_ms == 0 &&
         latency_distribution.kind == LatencyDistribution::Kind::None &&
         slow_body_bytes_per_sec == 0 && !crash;
}

Result<FaultSpec> FaultSpec::fromJson(const nlohmann::json& json) {
  static const char* const kFields[] = {"error_rate",
                                        "error_http_status",
                                        "error_grpc_code",
                                        "retry_after",
                                        "grpc_pushback_ms",
                                        "latency_fixed_ms",
                                        "latency_distribution",
                                        "hang_rate",
                                        "reset_rate",
                                        "slow_body_bytes_per_sec",
                                        "crash"};
  if (!json.is_object()) {
    return Status::error("fault spec must be a JSON object");
  }
  for (auto it = json.begin(); it != json.end(); ++it) {
    bool known = false;
    for (const char* field : kFields) {
      known = known || it.key() == field;
    }
    if (!known) {
      return Status::error("unknown fault field '" + it.key() + "'");
    }
  }
  FaultSpec spec;
  std::string error;
  int64_t http_status = spec.error_http_status;
  int64_t grpc_code = spec.error_grpc_code;
  int64_t pushback = -1;
  if (!readDouble(json, "error_rate", spec.error_rate, error) ||
      !readInt(json, "error_http_status", http_status, error) ||
      !readInt(json, "error_grpc_code", grpc_code, error) ||
      !readInt(json, "grpc_pushback_ms", pushback, error) ||
      !readDouble(json, "latency_fixed_ms", spec.latency_fixed_ms, error) ||
      !readDouble(json, "hang_rate", spec.hang_rate, error) ||
      !readDouble(json, "reset_rate", spec.reset_rate, error) ||
      !readInt(json, "slow_body_bytes_per_sec", spec.slow_body_bytes_per_sec, error)) {
    return Status::error(error);
  }
  if (http_status < 0 || http_status > 999 || grpc_code < 0 || grpc_code > 99) {
    return Status::error("error_http_status or error_grpc_code out of range");
  }
  spec.error_http_status = static_cast<int>(http_status);
  spec.error_grpc_code = static_cast<int>(grpc_code);
  if (json.contains("grpc_pushback_ms") && !json["grpc_pushback_ms"].is_null()) {
    spec.grpc_pushback_ms = pushback;
  }
  if (auto it = json.find("retry_after"); it != json.end() && !it->is_null()) {
    if (it->is_string()) {
      spec.retry_after = it->get<std::string>();
    } else if (it->is_number_unsigned()) {
      // Accept {"retry_after": 1} as a convenience: delay-seconds is an integer anyway.
      spec.retry_after = std::to_string(it->get<uint64_t>());
    } else {
      return Status::error("retry_after must be a string or a non-negative integer");
    }
  }
  if (auto it = json.find("latency_distribution"); it != json.end() && !it->is_null()) {
    if (!it->is_string()) {
      return Status::error("latency_distribution must be a string");
    }
    auto d = LatencyDistribution::parse(it->get<std::string>());
    if (!d) {
      return d.status();
    }
    spec.latency_distribution = *d;
  }
  if (auto it = json.find("crash"); it != json.end() && !it->is_null()) {
    if (!it->is_boolean()) {
      return Status::error("crash must be true or false");
    }
    spec.crash = it->get<bool>();
  }
  if (auto s = spec.validate(); !s) {
    return s;
  }
  return spec;
}

Result<FaultSpec> FaultSpec::fromJsonText(const std::string& text) {
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
    return FaultSpec{};
  }
  auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return Status::error("fault spec is not valid JSON");
  }
  return fromJson(json);
}

nlohmann::json FaultSpec::toJson() const {
  nlohmann::json json = {
      {"error_rate", error_rate},
      {"error_http_status", error_http_status},
      {"error_grpc_code", error_grpc_code},
      {"retry_after", retry_after ? nlohmann::json(*retry_after) : nlohmann::json(nullptr)},
      {"grpc_pushback_ms",
       grpc_pushback_ms ? nlohmann::json(*grpc_pushback_ms) : nlohmann::json(nullptr)},
      {"latency_fixed_ms", latency_fixed_ms},
      {"latency_distribution", latency_distribution.toString()},
      {"hang_rate", hang_rate},
      {"reset_rate", reset_rate},
      {"slow_body_bytes_per_sec", slow_body_bytes_per_sec},
      {"crash", crash},
  };
  return json;
}

void addFaultFlags(CLI::App& app, FaultSpec& spec) {
  const char* group =
      "Fault injection (also settable at run time: POST /_fault on the control port)";
  app.add_option("--fault-error-rate", spec.error_rate,
                 "fraction of requests answered with an error")
      ->check(CLI::Range(0.0, 1.0))
      ->group(group);
  app.add_option("--fault-error-status", spec.error_http_status, "HTTP status of injected errors")
      ->check(CLI::Range(400, 599))
      ->group(group);
  app.add_option("--fault-error-grpc-code", spec.error_grpc_code,
                 "gRPC code of injected errors (14 = UNAVAILABLE)")
      ->check(CLI::Range(1, 16))
      ->group(group);
  app.add_option_function<std::string>(
         "--fault-retry-after", [&spec](const std::string& v) { spec.retry_after = v; },
         "Retry-After header value on injected errors, e.g. 1")
      ->group(group);
  app.add_option_function<int64_t>(
         "--fault-grpc-pushback-ms", [&spec](int64_t v) { spec.grpc_pushback_ms = v; },
         "grpc-retry-pushback-ms on injected gRPC errors")
      ->check(CLI::NonNegativeNumber)
      ->group(group);
  app.add_option("--fault-latency-ms", spec.latency_fixed_ms,
                 "fixed latency added to every request")
      ->check(CLI::NonNegativeNumber)
      ->group(group);
  app.add_option_function<std::string>(
         "--fault-latency-dist",
         [&spec](const std::string& v) {
           if (auto d = LatencyDistribution::parse(v)) {
             spec.latency_distribution = *d;
           }
         },
         "random added latency: exp:MEAN_MS | uniform:MIN_MS:MAX_MS | normal:MEAN_MS:STDDEV_MS | "
         "lognormal:MEDIAN_MS:SIGMA")
      ->check(
          [](const std::string& v) {
            auto d = LatencyDistribution::parse(v);
            return d ? std::string() : d.error();
          },
          "DISTRIBUTION")
      ->group(group);
  app.add_option("--fault-hang-rate", spec.hang_rate, "fraction of requests never answered")
      ->check(CLI::Range(0.0, 1.0))
      ->group(group);
  app.add_option("--fault-reset-rate", spec.reset_rate,
                 "fraction of requests whose connection is reset mid-response")
      ->check(CLI::Range(0.0, 1.0))
      ->group(group);
  app.add_option("--fault-slow-body-bps", spec.slow_body_bytes_per_sec,
                 "trickle response bodies at this many bytes per second (0 = off)")
      ->check(CLI::NonNegativeNumber)
      ->group(group);
  app.add_flag("--fault-crash", spec.crash, "exit abruptly on the first request")->group(group);
}

}  // namespace bulwark::examples
