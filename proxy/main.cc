// Only main(): parse flags, set up threading for libevent, run the server.
#include <csignal>
#include <iostream>

#include <CLI/CLI.hpp>
#include <event2/thread.h>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "bulwark/build_info.h"  // generated in the build tree
#include "common/version.h"
#include "filters/builtin.h"
#include "proxy/config/check.h"
#include "proxy/config/parser.h"
#include "proxy/server/server.h"

namespace {

int runProxy(const std::string& config_path, const std::string& concurrency,
             const std::string& log_level, const std::string& admin_address, bool takeover) {
  auto level = spdlog::level::from_str(log_level == "warning" ? "warn" : log_level);
  spdlog::set_default_logger(spdlog::stderr_color_mt("bulwark"));
  spdlog::set_level(level);

  // Validate the whole file before binding anything.
  auto loaded = bulwark::config::loadConfigFile(config_path);
  bool has_error = false;
  for (const auto& d : loaded.diagnostics) {
    std::cerr << d.format() << "\n";
    has_error = has_error || !d.warning;
  }
  if (loaded.unreadable) {
    return 2;
  }
  if (has_error || !loaded.config) {
    return 1;
  }

  bulwark::server::ServerOptions options;
  options.config_path = config_path;
  options.takeover = takeover;
  if (!concurrency.empty() && concurrency != "auto") {
    try {
      int n = std::stoi(concurrency);
      if (n < 1) {
        throw std::invalid_argument("concurrency");
      }
      options.concurrency = n;
    } catch (const std::exception&) {
      std::cerr << R"(bulwark: --concurrency must be "auto" or a positive integer, got ")"
                << concurrency << "\"\n";
      return 2;
    }
  } else if (concurrency == "auto") {
    options.concurrency = 0;
  }
  if (!admin_address.empty()) {
    options.admin_address = admin_address;
  }

  // SIGPIPE would kill the process on a write to a closed socket; errors are handled instead.
  std::signal(SIGPIPE, SIG_IGN);
  bulwark::http::FilterRegistry filters;
  bulwark::filters::registerBuiltinFilters(filters);
  bulwark::server::Server server(options, *loaded.config, &filters);
  auto status = server.start();
  if (!status) {
    std::cerr << "bulwark: " << status.message() << "\n";
    return 1;
  }
  return server.run();
}

}  // namespace

int main(int argc, char** argv) {
  evthread_use_pthreads();
  CLI::App app{"bulwark: a reliability proxy for HTTP/1.1, HTTP/2 and gRPC"};
  app.require_subcommand(1);

  std::string config_path;
  std::string concurrency;
  std::string log_level = "info";
  std::string admin_address;
  auto* run = app.add_subcommand("run", "Serve traffic with a config file");
  run->add_option("-c,--config", config_path, "Config file (YAML)")
      ->required()
      ->envname("BULWARK_CONFIG");
  run->add_option("--concurrency", concurrency, "Workers: auto or N")
      ->envname("BULWARK_CONCURRENCY");
  run->add_option("-l,--log-level", log_level, "trace|debug|info|warn|error|critical|off")
      ->envname("BULWARK_LOG_LEVEL")
      ->check(
          CLI::IsMember({"trace", "debug", "info", "warn", "warning", "error", "critical", "off"}));
  run->add_option("--admin-address", admin_address, "Admin listener address")
      ->envname("BULWARK_ADMIN_ADDRESS");
  bool takeover = false;
  run->add_flag("--takeover", takeover,
                "Share listener ports another process already serves (a handover: start, wait "
                "for /ready, then stop the old process)");
  std::string mode = "serve";
  run->add_option("--mode", mode, "serve|validate (validate = check)")
      ->check(CLI::IsMember({"serve", "validate"}));

  std::string check_path;
  bool print_effective = false;
  std::string output = "text";
  auto* check = app.add_subcommand(
      "check", "Validate a config file and exit (0 valid, 1 invalid, 2 unreadable)");
  check->add_option("-c,--config", check_path, "Config file (YAML)")
      ->required()
      ->envname("BULWARK_CONFIG");
  check->add_flag("--print-effective", print_effective,
                  "Print the config with defaults and inheritance resolved");
  check->add_option("--output", output, "text|json")->check(CLI::IsMember({"text", "json"}));
  std::string explain_route;
  check->add_option("--explain", explain_route,
                    "Print one route's effective policies and its upstream's as JSON");

  bool version_json = false;
  auto* version = app.add_subcommand("version", "Print the version");
  version->add_flag("--json", version_json, "JSON output");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  if (*check && !explain_route.empty()) {
    return bulwark::config::runExplain(check_path, explain_route, std::cout, std::cerr);
  }
  if (*check) {
    return bulwark::config::runCheck(check_path, print_effective, output == "json", std::cout,
                                     std::cerr);
  }
  if (*version) {
    if (version_json) {
      std::cout << nlohmann::json{{"version", bulwark::kVersion},
                                  {"revision", bulwark::build_info::kGitRevision},
                                  {"revisionDirty", bulwark::build_info::kGitDirty},
                                  {"compiler", __VERSION__}}
                       .dump()
                << "\n";
    } else {
      std::cout << "bulwark " << bulwark::kVersion << "\n";
    }
    return 0;
  }
  if (mode == "validate") {
    return bulwark::config::runCheck(config_path, false, false, std::cout, std::cerr);
  }
  return runProxy(config_path, concurrency, log_level, admin_address, takeover);
}
