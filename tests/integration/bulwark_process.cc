#include "tests/integration/bulwark_process.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>

#include <gtest/gtest.h>

namespace bulwark::testing {
namespace {
std::atomic<int> temp_counter{0};

/** "NAME listening on HOST:PORT" (IPv6 hosts in brackets): host and port are groups 1 and 2. */
std::regex announcement(const std::string& prefix) {
  return std::regex(prefix + R"( listening on (\[[0-9a-fA-F:.]+\]|[0-9.]+):(\d+))");
}

std::string unbracketed(const std::string& host) {
  return host.size() > 2 && host.front() == '[' ? host.substr(1, host.size() - 2) : host;
}
}  // namespace

std::string bulwarkBinary() {
  // An installed binary instead of the build's (tests/package runs the suite against the .deb).
  const char* installed = std::getenv("BULWARK_TEST_BINARY");
  return installed != nullptr && *installed != '\0' ? installed : BULWARK_BINARY_PATH;
}

std::string writeTempFile(const std::string& name, const std::string& text) {
  // mkdtemp: a directory nobody made before. A name from the pid alone could be one an earlier
  // run left behind under a reused pid, files included.
  std::string pattern = (std::filesystem::temp_directory_path() /
                         ("bulwark-test-" + std::to_string(::getpid()) + "-" +
                          std::to_string(temp_counter.fetch_add(1)) + "-XXXXXX"))
                            .string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp " << pattern << ": " << std::strerror(errno);
    return {};
  }
  auto path = std::filesystem::path(pattern) / name;
  std::ofstream out(path);
  out << text;
  return path.string();
}

std::unique_ptr<BulwarkProcess> BulwarkProcess::start(const std::string& yaml,
                                                      const BulwarkStartOptions& options,
                                                      std::string* error) {
  auto self = std::unique_ptr<BulwarkProcess>(new BulwarkProcess());
  self->config_path_ = writeTempFile("bulwark.yaml", yaml);
  ProcessOptions process;
  process.path = bulwarkBinary();
  process.args = {"run"};
  if (options.config_flag) {
    process.args.insert(process.args.end(), {"-c", self->config_path_});
  } else {
    process.env.emplace_back("BULWARK_CONFIG", self->config_path_);
  }
  if (!options.log_level.empty()) {
    process.args.insert(process.args.end(), {"--log-level", options.log_level});
  }
  process.args.insert(process.args.end(), options.extra_args.begin(), options.extra_args.end());
  process.env.insert(process.env.end(), options.env.begin(), options.env.end());
  self->child_ = ChildProcess::spawn(process, error);
  if (!self->child_) {
    return nullptr;
  }
  auto admin = self->child_->waitForLine(announcement("admin"));
  if (!admin) {
    if (error) {
      *error = "admin port not announced; output:\n" + self->child_->output();
    }
    return nullptr;
  }
  self->admin_host_ = unbracketed((*admin)[1]);
  self->admin_port_ = static_cast<uint16_t>(std::stoi((*admin)[2]));
  for (const auto& name : options.listeners) {
    auto line = self->child_->waitForLine(announcement("listener " + name));
    if (!line) {
      if (error) {
        *error = "listener " + name + " not announced; output:\n" + self->child_->output();
      }
      return nullptr;
    }
    self->hosts_[name] = unbracketed((*line)[1]);
    self->ports_[name] = static_cast<uint16_t>(std::stoi((*line)[2]));
  }
  return self;
}

std::unique_ptr<BulwarkProcess> BulwarkProcess::start(
    const std::string& yaml, const std::vector<std::string>& listener_names, std::string* error,
    std::vector<std::string> extra_args) {
  BulwarkStartOptions options;
  options.listeners = listener_names;
  options.extra_args = std::move(extra_args);
  return start(yaml, options, error);
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
  return waitForExit(timeout);
}

std::optional<int> BulwarkProcess::waitForExit(std::chrono::milliseconds timeout) {
  auto status = child_->waitForExit(deadlineIn(timeout));
  if (!status) {
    return std::nullopt;
  }
  return status->exited ? status->code : -status->signal;
}

std::unique_ptr<BulwarkProcess> startBulwark(const std::string& yaml,
                                             const BulwarkStartOptions& options) {
  std::string error;
  auto proxy = BulwarkProcess::start(yaml, options, &error);
  if (!proxy) {
    ADD_FAILURE() << "bulwark did not start: " << error << "\nconfig:\n" << yaml;
  }
  return proxy;
}

CliRun runBulwarkCli(const std::vector<std::string>& args,
                     const std::vector<std::pair<std::string, std::string>>& env,
                     Deadline deadline) {
  CliRun run;
  ProcessOptions options;
  options.path = bulwarkBinary();
  options.args = args;
  options.env = env;
  std::string error;
  auto child = ChildProcess::spawn(options, &error);
  if (!child) {
    run.stderr_text = "spawn failed: " + error;
    return run;
  }
  auto status = child->waitForExit(deadline);
  // Waiting for a line no output contains returns once the child's pipes are closed, so every
  // line it printed has been read.
  (void)child->waitForLine(std::regex(R"(^\x01never\x01$)"), deadline);
  for (const auto& line : child->lines()) {
    (line.from_stderr ? run.stderr_text : run.stdout_text) += line.text + "\n";
  }
  if (status && status->exited) {
    run.code = status->code;
  }
  return run;
}

RefusingPort::RefusingPort(uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  // A port just released may still have connections in TIME_WAIT.
  const int one = 1;
  ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  socklen_t len = sizeof(a);
  // No listen(): a SYN to a bound socket that does not listen is answered with a reset.
  if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ADD_FAILURE() << "cannot bind a refusing port on 127.0.0.1:" << port;
    return;
  }
  port_ = ntohs(a.sin_port);
}

RefusingPort::~RefusingPort() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

std::string RefusingPort::address() const { return "127.0.0.1:" + std::to_string(port_); }

}  // namespace bulwark::testing
