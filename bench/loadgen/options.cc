#include "bench/loadgen/options.h"

#include <strings.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace bulwark::bench {
namespace {

Result<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::error(fmt::format("cannot read '{}'", path));
  }
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

Result<std::pair<std::string, std::string>> parseHeader(const std::string& text) {
  const auto colon = text.find(':');
  if (colon == std::string::npos || colon == 0) {
    return Status::error(fmt::format("invalid header '{}' (want 'name: value')", text));
  }
  std::string name = text.substr(0, colon);
  std::string value = text.substr(colon + 1);
  const auto first = value.find_first_not_of(" \t");
  value = first == std::string::npos ? std::string() : value.substr(first);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
    value.pop_back();
  }
  return std::make_pair(std::move(name), std::move(value));
}

}  // namespace

const char* protocolName(LoadProtocol protocol) {
  switch (protocol) {
    case LoadProtocol::Http1: return "h1";
    case LoadProtocol::H2c: return "h2c";
    case LoadProtocol::Grpc: return "grpc";
  }
  return "h1";
}

Result<TargetAddress> parseTarget(std::string_view text) {
  TargetAddress target;
  if (text.starts_with("http://")) {
    text.remove_prefix(7);
  }
  while (text.ends_with("/")) {
    text.remove_suffix(1);
  }
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) {
    return Status::error(fmt::format("invalid target '{}' (want HOST:PORT)", text));
  }
  std::string_view host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string_view port = text.substr(colon + 1);
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || ptr != port.data() + port.size() || value == 0 || value > 65535) {
    return Status::error(fmt::format("invalid port in target '{}'", text));
  }
  target.host = std::string(host);
  target.port = static_cast<uint16_t>(value);
  target.text = std::string(text);
  return target;
}

Result<std::vector<RequestTemplate>> loadRequestsFile(const std::string& path) {
  auto text = readFile(path);
  if (!text) {
    return text.status();
  }
  nlohmann::json doc = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_array() || doc.empty()) {
    return Status::error(fmt::format("{}: want a non-empty JSON list of requests", path));
  }
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  std::vector<RequestTemplate> out;
  for (size_t i = 0; i < doc.size(); ++i) {
    const auto& item = doc[i];
    if (!item.is_object()) {
      return Status::error(fmt::format("{}: request {} is not an object", path, i));
    }
    RequestTemplate t;
    t.name = fmt::format("request{}", i);
    auto str = [&](const char* key, std::string& into) -> Status {
      if (!item.contains(key)) {
        return Status::ok();
      }
      if (!item[key].is_string()) {
        return Status::error(fmt::format("{}: request {}: '{}' must be a string", path, i, key));
      }
      into = item[key].get<std::string>();
      return Status::ok();
    };
    for (auto [key, into] : {std::pair<const char*, std::string*>{"name", &t.name},
                             {"method", &t.method},
                             {"path", &t.path},
                             {"body", &t.body},
                             {"grpc_method", &t.grpc_method}}) {
      if (auto s = str(key, *into); !s) {
        return s;
      }
    }
    if (item.contains("weight")) {
      if (!item["weight"].is_number() || item["weight"].get<double>() < 0) {
        return Status::error(
            fmt::format("{}: request {}: 'weight' must be a number >= 0", path, i));
      }
      t.weight = item["weight"].get<double>();
    }
    if (item.contains("headers")) {
      if (!item["headers"].is_object()) {
        return Status::error(fmt::format("{}: request {}: 'headers' must be an object", path, i));
      }
      for (const auto& [name, value] : item["headers"].items()) {
        if (!value.is_string()) {
          return Status::error(
              fmt::format("{}: request {}: header '{}' must be a string", path, i, name));
        }
        t.headers.emplace_back(name, value.get<std::string>());
      }
    }
    if (item.contains("body_file")) {
      if (item.contains("body")) {
        return Status::error(
            fmt::format("{}: request {}: 'body' and 'body_file' both set", path, i));
      }
      std::string file;
      if (auto s = str("body_file", file); !s) {
        return s;
      }
      std::filesystem::path p(file);
      if (p.is_relative() && std::filesystem::exists(dir / p)) {
        p = dir / p;
      }
      auto body = readFile(p.string());
      if (!body) {
        return Status::error(fmt::format("{}: request {}: {}", path, i, body.error()));
      }
      t.body = std::move(*body);
    }
    out.push_back(std::move(t));
  }
  double total = 0;
  for (const auto& t : out) {
    total += t.weight;
  }
  if (total <= 0) {
    return Status::error(fmt::format("{}: the weights add up to 0", path));
  }
  return out;
}

CommandLine parseCommandLine(int argc, const char* const* argv) {
  CommandLine result;
  CLI::App app{
      "bulwark-loadgen: open-loop HTTP/1.1, h2c and gRPC load generator (constant "
      "arrival rate, latency from the intended send time)"};
  std::vector<std::string> targets;
  std::string protocol = "h1";
  size_t connections = 8;
  size_t max_streams = 100;
  std::vector<std::string> phases;
  std::string rate;
  std::string duration;
  std::string method = "GET";
  std::string path = "/";
  std::vector<std::string> headers;
  std::string body;
  std::string body_file;
  std::string grpc_method;
  std::string requests_file;
  std::string timeout = "5s";
  size_t max_queue = 10000;
  uint64_t seed = 1;
  size_t threads = 1;
  std::string json_out;
  bool quiet = false;

  app.add_option("--target", targets, "HOST:PORT, repeatable (round-robin per request)")
      ->required();
  app.add_option("--protocol", protocol, "h1|h2c|grpc")
      ->check(CLI::IsMember({"h1", "h2c", "grpc"}));
  app.add_option("--connections", connections, "connections per target")
      ->check(CLI::Range(1, 100000));
  app.add_option("--max-streams", max_streams, "h2c/grpc: streams per connection")
      ->check(CLI::Range(1, 100000));
  auto* phase_opt =
      app.add_option("--phase", phases, "NAME:RPS:DURATION, RPS may be A-B (ramp); repeatable");
  auto* rate_opt = app.add_option("--rate", rate, "shortcut for one phase 'steady:RATE:DURATION'");
  auto* duration_opt = app.add_option("--duration", duration, "with --rate");
  rate_opt->needs(duration_opt)->excludes(phase_opt);
  duration_opt->needs(rate_opt);
  app.add_option("--method", method, "request method");
  app.add_option("--path", path, "request path");
  app.add_option("--header", headers, "'name: value', repeatable (added to every request)");
  auto* body_opt = app.add_option("--body", body, "request body");
  auto* body_file_opt = app.add_option("--body-file", body_file, "request body from a file");
  body_opt->excludes(body_file_opt);
  app.add_option("--grpc-method", grpc_method, "grpc: /pkg.Service/Method");
  auto* requests_opt =
      app.add_option("--requests", requests_file, "JSON list of weighted request templates");
  requests_opt->excludes(body_opt)->excludes(body_file_opt);
  app.add_option("--timeout", timeout, "per request, from its intended send time");
  app.add_option("--max-queue", max_queue, "per target: requests waiting for a connection/stream");
  app.add_option("--seed", seed, "RNG seed (request picks)");
  app.add_option("--threads", threads,
                 "event-loop threads (arrivals and connections split between them)")
      ->check(CLI::Range(1, 64));
  app.add_option("--json-out", json_out, "report file ('-' = stdout)");
  app.add_flag("--quiet", quiet, "no per-second progress on stderr");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::ostringstream out;
    std::ostringstream err;
    result.exit_code = app.exit(e, out, err) == 0 ? 0 : 2;
    result.message = out.str() + err.str();
    return result;
  }

  auto fail = [&](std::string message) {
    result.exit_code = 2;
    result.message = std::move(message);
    return result;
  };

  LoadgenOptions options;
  for (const auto& t : targets) {
    auto target = parseTarget(t);
    if (!target) {
      return fail(target.error());
    }
    options.targets.push_back(std::move(*target));
  }
  options.protocol = protocol == "h2c"    ? LoadProtocol::H2c
                     : protocol == "grpc" ? LoadProtocol::Grpc
                                          : LoadProtocol::Http1;
  options.connections = connections;
  options.max_streams = max_streams;
  if (!rate.empty()) {
    phases.push_back(fmt::format("steady:{}:{}", rate, duration));
  }
  if (phases.empty()) {
    return fail("no load given: use --phase NAME:RPS:DURATION or --rate R --duration D");
  }
  for (const auto& p : phases) {
    auto phase = parsePhase(p);
    if (!phase) {
      return fail(phase.error());
    }
    options.phases.push_back(std::move(*phase));
  }
  HeaderList extra;
  for (const auto& h : headers) {
    auto header = parseHeader(h);
    if (!header) {
      return fail(header.error());
    }
    extra.push_back(std::move(*header));
  }
  if (!requests_file.empty()) {
    auto templates = loadRequestsFile(requests_file);
    if (!templates) {
      return fail(templates.error());
    }
    options.requests = std::move(*templates);
    options.requests_file = requests_file;
  } else {
    RequestTemplate t;
    t.method = method;
    t.path = path;
    t.grpc_method = grpc_method;
    if (!body_file.empty()) {
      auto content = readFile(body_file);
      if (!content) {
        return fail(content.error());
      }
      t.body = std::move(*content);
    } else {
      t.body = body;
    }
    options.requests = {std::move(t)};
  }
  for (auto& t : options.requests) {
    // Command-line headers are defaults: a template's own header of the same name wins.
    for (const auto& [name, value] : extra) {
      bool present = false;
      for (const auto& [n, v] : t.headers) {
        present = present || strcasecmp(n.c_str(), name.c_str()) == 0;
      }
      if (!present) {
        t.headers.emplace_back(name, value);
      }
    }
    if (options.protocol == LoadProtocol::Grpc) {
      if (t.grpc_method.empty() && !grpc_method.empty()) {
        t.grpc_method = grpc_method;
      }
      if (t.grpc_method.empty() && t.path == "/") {
        return fail(fmt::format("request '{}': grpc needs --grpc-method (or a path)", t.name));
      }
      t.method = "POST";
    }
  }
  auto parsed_timeout = parseDuration(timeout);
  if (!parsed_timeout || parsed_timeout->count() <= 0) {
    return fail(fmt::format("invalid --timeout '{}'", timeout));
  }
  options.timeout = *parsed_timeout;
  options.max_queue = max_queue;
  options.seed = seed;
  if (threads > connections) {
    return fail(fmt::format("--threads {} needs --connections >= {}", threads, threads));
  }
  options.threads = threads;
  options.json_out = json_out;
  options.quiet = quiet;
  result.options = std::move(options);
  return result;
}

}  // namespace bulwark::bench
