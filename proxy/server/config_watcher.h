#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <event2/event.h>

#include "common/result.h"
#include "proxy/event/dispatcher.h"

namespace bulwark::server {

/**
 * Asks for a reload when the config file changes: an edit in place, an editor's rename over it,
 * or Kubernetes swapping the "..data" symlink of a ConfigMap volume. inotify watches the file's
 * directory, where each of those is an event; events are debounced, and a reload is asked only
 * when the file's bytes differ from the last bytes seen, so a bad file is tried once, not on
 * every event.
 * Thread: main (its inotify event and timer run on the server's dispatcher).
 */
class ConfigWatcher {
public:
  static Result<std::unique_ptr<ConfigWatcher>> create(
      event::Dispatcher& dispatcher, std::string path, std::function<void()> on_change,
      std::chrono::milliseconds debounce = std::chrono::milliseconds(200));
  ~ConfigWatcher();
  ConfigWatcher(const ConfigWatcher&) = delete;
  ConfigWatcher& operator=(const ConfigWatcher&) = delete;

  /** No more reloads from this watcher (it may be inside its own callback: not destroyed). */
  void stop();

private:
  ConfigWatcher(std::string path, int fd, std::function<void()> on_change,
                std::chrono::milliseconds debounce);
  static void onInotify(evutil_socket_t fd, short, void* arg);
  void checkFile();

  std::string path_;
  int fd_;
  std::function<void()> on_change_;
  std::chrono::milliseconds debounce_;
  ::event* event_ = nullptr;
  event::TimerPtr debounce_timer_;
  std::string last_contents_;
};

/** True when `config_path` lies in a Kubernetes ConfigMap or Secret volume ("..data" beside it). */
bool inConfigMapVolume(const std::string& config_path);

}  // namespace bulwark::server
