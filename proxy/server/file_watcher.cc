#include "proxy/server/file_watcher.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
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

Result<std::unique_ptr<FileWatcher>> FileWatcher::create(event::Dispatcher& dispatcher,
                                                         std::string what,
                                                         const std::vector<std::string>& paths,
                                                         std::function<void()> on_change,
                                                         std::chrono::milliseconds debounce) {
  int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    return Status::error(fmt::format("{}: inotify: {}", what, std::strerror(errno)));
  }
  constexpr uint32_t kMask =
      IN_CLOSE_WRITE | IN_MODIFY | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ATTRIB;
  std::unique_ptr<FileWatcher> watcher(
      new FileWatcher(std::move(what), fd, std::move(on_change), debounce));
  std::vector<std::string> dirs;
  for (const auto& path : paths) {
    std::string dir = directoryOf(path);
    if (std::find(dirs.begin(), dirs.end(), dir) == dirs.end()) {
      if (::inotify_add_watch(fd, dir.c_str(), kMask) < 0) {
        return Status::error(
            fmt::format("{}: cannot watch {}: {}", watcher->what_, dir, std::strerror(errno)));
      }
      dirs.push_back(dir);
    }
    watcher->last_contents_[path] = readWhole(path).value_or("");
  }
  watcher->event_ = event_new(dispatcher.base(), fd, EV_READ | EV_PERSIST, &FileWatcher::onInotify,
                              watcher.get());
  event_add(watcher->event_, nullptr);
  watcher->debounce_timer_ = dispatcher.createTimer([w = watcher.get()] { w->checkFile(); });
  spdlog::info("{}: watching {} file(s) for changes", watcher->what_, paths.size());
  return watcher;
}

FileWatcher::FileWatcher(std::string what, int fd, std::function<void()> on_change,
                         std::chrono::milliseconds debounce)
    : what_(std::move(what)), fd_(fd), on_change_(std::move(on_change)), debounce_(debounce) {}

FileWatcher::~FileWatcher() {
  if (event_ != nullptr) {
    event_free(event_);
  }
  ::close(fd_);
}

void FileWatcher::stop() {
  if (event_ != nullptr) {
    event_del(event_);
  }
  debounce_timer_->disableTimer();
}

void FileWatcher::onInotify(evutil_socket_t fd, short, void* arg) {
  auto* self = static_cast<FileWatcher*>(arg);
  // Which entry changed does not matter (the file, its symlink, ..data): drain the queue and
  // look at the file itself once the burst is over.
  alignas(inotify_event) char buf[4096];
  while (::read(fd, buf, sizeof(buf)) > 0) {
  }
  self->debounce_timer_->enableTimer(self->debounce_);
}

void FileWatcher::checkFile() {
  bool changed = false;
  for (auto& [path, last] : last_contents_) {
    auto contents = readWhole(path);
    if (!contents || *contents == last) {
      continue;  // mid-swap (the next event comes), or a touch that changed nothing
    }
    last = std::move(*contents);
    spdlog::info("{}: {} changed", what_, path);
    changed = true;
  }
  if (changed) {
    on_change_();
  }
}

}  // namespace bulwark::server
