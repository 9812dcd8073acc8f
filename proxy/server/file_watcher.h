#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <event2/event.h>

#include "common/result.h"
#include "proxy/event/dispatcher.h"

namespace bulwark::server {

/**
 * Calls back when one of a few files changes (the config file; certificates and keys): an edit
 * in place, an editor's rename over it, or Kubernetes swapping the "..data" symlink of a
 * ConfigMap or Secret volume. inotify watches each file's directory, where each of those is an
 * event; events are debounced, and the callback runs only when some file's bytes differ from the
 * last bytes seen, so a bad file is tried once, not on every event.
 * Thread: main (its inotify event and timer run on the server's dispatcher).
 */
class FileWatcher {
public:
  /** `what` names the watch in errors and logs ("runtime.watchConfig", "tls files"). */
  static Result<std::unique_ptr<FileWatcher>> create(
      event::Dispatcher& dispatcher, std::string what, const std::vector<std::string>& paths,
      std::function<void()> on_change,
      std::chrono::milliseconds debounce = std::chrono::milliseconds(200));
  ~FileWatcher();
  FileWatcher(const FileWatcher&) = delete;
  FileWatcher& operator=(const FileWatcher&) = delete;

  /** No more reloads from this watcher (it may be inside its own callback: not destroyed). */
  void stop();

private:
  FileWatcher(std::string what, int fd, std::function<void()> on_change,
              std::chrono::milliseconds debounce);
  static void onInotify(evutil_socket_t fd, short, void* arg);
  void checkFile();

  std::string what_;
  int fd_;
  std::function<void()> on_change_;
  std::chrono::milliseconds debounce_;
  ::event* event_ = nullptr;
  event::TimerPtr debounce_timer_;
  std::map<std::string, std::string> last_contents_;  // by path
};

/** True when `config_path` lies in a Kubernetes ConfigMap or Secret volume ("..data" beside it). */
bool inConfigMapVolume(const std::string& config_path);

}  // namespace bulwark::server
