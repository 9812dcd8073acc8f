#include "proxy/server/config_watcher.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace bulwark::server {

namespace {

std::string directoryOf(const std::string& path) {
  auto parent = std::filesystem::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

std::optional<std::string> readWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return std::nullopt;
  }
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

bool inConfigMapVolume(const std::string& config_path) {
  std::error_code ec;
  return !config_path.empty() &&
         std::filesystem::is_symlink(std::filesystem::path(directoryOf(config_path)) / "..data",
                                     ec);
}

Result<std::unique_ptr<ConfigWatcher>> ConfigWatcher::create(event::Dispatcher& dispatcher,
                                                             std::string path,
                                                             std::function<void()> on_change,
                                                             std::chrono::milliseconds debounce) {
  int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    return Status::error(fmt::format("runtime.watchConfig: inotify: {}", std::strerror(errno)));
  }
  std::string dir = directoryOf(path);
  constexpr uint32_t kMask =
      IN_CLOSE_WRITE | IN_MODIFY | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ATTRIB;
  if (::inotify_add_watch(fd, dir.c_str(), kMask) < 0) {
    std::string why = std::strerror(errno);
    ::close(fd);
    return Status::error(fmt::format("runtime.watchConfig: cannot watch {}: {}", dir, why));
  }
  std::unique_ptr<ConfigWatcher> watcher(
      new ConfigWatcher(std::move(path), fd, std::move(on_change), debounce));
  watcher->last_contents_ = readWhole(watcher->path_).value_or("");
  watcher->event_ = event_new(dispatcher.base(), fd, EV_READ | EV_PERSIST,
                              &ConfigWatcher::onInotify, watcher.get());
  event_add(watcher->event_, nullptr);
  watcher->debounce_timer_ = dispatcher.createTimer([w = watcher.get()] { w->checkFile(); });
  spdlog::info("watching {} for config changes", watcher->path_);
  return watcher;
}

ConfigWatcher::ConfigWatcher(std::string path, int fd, std::function<void()> on_change,
                             std::chrono::milliseconds debounce)
    : path_(std::move(path)), fd_(fd), on_change_(std::move(on_change)), debounce_(debounce) {}

ConfigWatcher::~ConfigWatcher() {
  if (event_ != nullptr) {
    event_free(event_);
  }
  ::close(fd_);
}

void ConfigWatcher::stop() {
  if (event_ != nullptr) {
    event_del(event_);
  }
  debounce_timer_->disableTimer();
}

void ConfigWatcher::onInotify(evutil_socket_t fd, short, void* arg) {
  auto* self = static_cast<ConfigWatcher*>(arg);
  // Which entry changed does not matter (the file, its symlink, ..data): drain the queue and
  // look at the file itself once the burst is over.
  alignas(inotify_event) char buf[4096];
  while (::read(fd, buf, sizeof(buf)) > 0) {
  }
  self->debounce_timer_->enableTimer(self->debounce_);
}

void ConfigWatcher::checkFile() {
  auto contents = readWhole(path_);
  if (!contents || *contents == last_contents_) {
    return;  // mid-swap (the next event comes), or a touch that changed nothing
  }
  last_contents_ = std::move(*contents);
  spdlog::info("{} changed: reloading", path_);
  on_change_();
}

}  // namespace bulwark::server
