#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bench/loadgen/schedule.h"
#include "common/result.h"

namespace bulwark::bench {

/** Wire protocol of the generated requests. Grpc = h2c with gRPC unary framing. */
enum class LoadProtocol { Http1, H2c, Grpc };

/** "h1", "h2c", "grpc". */
const char* protocolName(LoadProtocol protocol);

using HeaderList = std::vector<std::pair<std::string, std::string>>;

/**
 * One kind of request. With --requests several are picked by weight; otherwise there is one,
 * named "default". For grpc, `body` is the serialized protobuf message (the generator adds the
 * 5-byte frame) and grpc_method (or else path) is the :path.
 * Thread: value type.
 */
struct RequestTemplate {
  std::string name = "default";
  double weight = 1.0;
  std::string method = "GET";
  std::string path = "/";
  HeaderList headers;
  std::string body;
  std::string grpc_method;
};

/** HOST:PORT of one target. Thread: value type. */
struct TargetAddress {
  std::string host;
  uint16_t port = 0;
  /** As given (without an http:// prefix): the report's name and the Host / :authority. */
  std::string text;
};

/** "127.0.0.1:8080", "localhost:80", "[::1]:8080" (an "http://" prefix is ignored). */
Result<TargetAddress> parseTarget(std::string_view text);

/** Everything a run needs; the CLI fills it, tests build it directly. Thread: value type. */
struct LoadgenOptions {
  std::vector<TargetAddress> targets;
  LoadProtocol protocol = LoadProtocol::Http1;
  /** Per target. */
  size_t connections = 8;
  /** h2c/grpc: streams per connection (also capped by the peer's MAX_CONCURRENT_STREAMS). */
  size_t max_streams = 100;
  std::vector<PhaseSpec> phases;
  std::vector<RequestTemplate> requests{RequestTemplate{}};
  /** Set when the templates came from --requests (enables the by_request report section). */
  std::string requests_file;
  /** Per request, measured from its intended send time (queueing counts). */
  std::chrono::nanoseconds timeout = std::chrono::seconds(5);
  /** Per target: requests waiting for a free connection/stream; beyond it "overflow". */
  size_t max_queue = 10000;
  uint64_t seed = 1;
  /** Event-loop threads (each with its share of arrivals and connections; <= connections). */
  size_t threads = 1;
  /** Report destination; "-" is stdout, empty is none. */
  std::string json_out;
  bool quiet = false;
};

/** Result of reading the command line. Thread: value type. */
struct CommandLine {
  /** Set when the run should go ahead. */
  std::optional<LoadgenOptions> options;
  /** Otherwise the process exit code: 0 after --help, 2 for bad arguments. */
  int exit_code = 0;
  /** Help text or the error, for the caller to print. */
  std::string message;
};

CommandLine parseCommandLine(int argc, const char* const* argv);

/**
 * Reads a --requests file: a JSON list of {"name","weight","method","path","headers":{..},
 * "body"|"body_file","grpc_method"}. A relative body_file is looked up next to the requests
 * file first, then in the current directory.
 */
Result<std::vector<RequestTemplate>> loadRequestsFile(const std::string& path);

}  // namespace bulwark::bench
