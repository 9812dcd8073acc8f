#include "tests/integration/bulwark_process.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

namespace bulwark::testing {
namespace {
std::atomic<int> temp_counter{0};
}  // namespace

std::string bulwarkBinary() {
  // An installed binary instead of the build's (tests/package runs the suite against the .deb).
  const char* installed = std::getenv("BULWARK_TEST_BINARY");
  return installed != nullptr && *installed != '\0' ? installed : BULWARK_BINARY_PATH;
}

std::string writeTempFile(const std::string& name, const std::string& text) {
  auto dir =
      std::filesystem::temp_directory_path() / ("bulwark-test-" + std::to_string(::getpid()) + "-" +
                                                std::to_string(temp_counter.fetch_add(1)));
  std::filesystem::create_directories(dir);
  auto path = dir / name;
  std::ofstream out(path);
  out << text;
  return path.string();
}

std::unique_ptr<BulwarkProcess> BulwarkProcess::start(
    const std::string& yaml, const std::vector<std::string>& listener_names, std::string* error,
    std::vector<std::string> extra_args) {
  auto self = std::unique_ptr<BulwarkProcess>(new BulwarkProcess());
  self->config_path_ = writeTempFile("bulwark.yaml", yaml);
  ProcessOptions options;
  options.path = bulwarkBinary();
  options.args = {"run", "-c", self->config_path_, "--log-level", "warn"};
  for (auto& a : extra_args) {
    options.args.push_back(std::move(a));
  }
  self->child_ = ChildProcess::spawn(options, error);
  if (!self->child_) {
    return nullptr;
  }
  auto admin = self->child_->waitForLine(std::regex(R"(admin listening on 127\.0\.0\.1:(\d+))"));
  if (!admin) {
    if (error) {
      *error = "admin port not announced; output:\n" + self->child_->output();
    }
    return nullptr;
  }
  self->admin_port_ = static_cast<uint16_t>(std::stoi((*admin)[1]));
  for (const auto& name : listener_names) {
    auto line = self->child_->waitForLine(
        std::regex("listener " + name + R"( listening on 127\.0\.0\.1:(\d+))"));
    if (!line) {
      if (error) {
        *error = "listener " + name + " not announced; output:\n" + self->child_->output();
      }
      return nullptr;
    }
    self->ports_[name] = static_cast<uint16_t>(std::stoi((*line)[1]));
  }
  return self;
}

BulwarkProcess::~BulwarkProcess() {
  if (child_ && child_->running()) {
    child_->signal(SIGKILL);
    child_->waitForExit(deadlineIn(std::chrono::seconds(5)));
  }
}

void BulwarkProcess::rewriteConfig(const std::string& yaml) {
  std::string tmp = config_path_ + ".tmp";
  {
    std::ofstream out(tmp);
    out << yaml;
  }
  std::filesystem::rename(tmp, config_path_);
}

std::optional<int> BulwarkProcess::stop(int sig, std::chrono::milliseconds timeout) {
  child_->signal(sig);
  auto status = child_->waitForExit(deadlineIn(timeout));
  if (!status) {
    return std::nullopt;
  }
  return status->exited ? status->code : -status->signal;
}

std::string simpleConfig(const std::string& listener_protocol, const std::string& upstream_protocol,
                         const std::vector<std::string>& endpoints, const std::string& route_extra,
                         const std::string& listener_extra, const std::string& top_extra) {
  std::ostringstream y;
  y << "apiVersion: bulwark.dev/v1alpha1\n"
    << "kind: ProxyConfig\n"
    << "metadata: {name: test}\n"
    << "admin: {address: 127.0.0.1:0}\n"
    << "runtime: {concurrency: 2, drain: {minDuration: 0s, timeout: 10s}}\n"
    << top_extra << "listeners:\n"
    << "- name: public\n"
    << "  address: 127.0.0.1:0\n"
    << "  protocol: " << listener_protocol << "\n"
    << listener_extra << "upstreams:\n"
    << "- name: backend\n"
    << "  protocol: " << upstream_protocol << "\n"
    << "  endpoints:\n"
    << "    static:\n";
  for (const auto& ep : endpoints) {
    y << "    - address: \"" << ep << "\"\n";
  }
  y << "routes:\n"
    << "- name: all\n"
    << "  match: {path: {prefix: /}}\n"
    << "  upstream: backend\n"
    << route_extra;
  return y.str();
}

}  // namespace bulwark::testing
