#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <typeindex>
#include <vector>

#include "common/assert.h"

namespace bulwark {

/**
 * State that outlives one config version: a retry budget, a bulkhead's in-flight count, token
 * buckets, an idempotency store. Each piece is filed under a key naming its owner and the
 * settings it was built from; a reload that leaves those unchanged is handed the same object,
 * so a reload neither refills buckets nor forgets what is in flight, and a changed setting gets
 * a fresh object. Pieces the latest config did not ask for are let go by endBuild() (a config
 * still serving in-flight requests keeps its own references). The one mechanism for state that
 * survives reloads: routes and filters both use it.
 * Thread: main (config builds); the objects it holds are shared with workers and must be
 * thread-safe themselves.
 */
class ReloadableState {
public:
  /** The object filed under `key`, made by `make` when there is none (or it is of another type). */
  template <typename T>
  std::shared_ptr<T> getOrCreate(const std::string& key,
                                 const std::function<std::shared_ptr<T>()>& make) {
    auto it = entries_.find(key);
    if (it == entries_.end() || it->second.type != std::type_index(typeid(T))) {
      std::shared_ptr<T> made = make();
      BULWARK_RELEASE_ASSERT(made != nullptr, "ReloadableState: make() returned null");
      it = entries_.insert_or_assign(key, Entry{made, std::type_index(typeid(T)), generation_})
               .first;
    }
    it->second.used_in = generation_;
    return std::static_pointer_cast<T>(it->second.value);
  }

  /** A config build starts: what it asks for is marked as used by it. */
  void beginBuild() { ++generation_; }
  /** The build was applied: entries it did not ask for are dropped. */
  void endBuild() {
    for (auto it = entries_.begin(); it != entries_.end();) {
      it = it->second.used_in == generation_ ? std::next(it) : entries_.erase(it);
    }
  }
  size_t size() const { return entries_.size(); }
  /** Every object of type T held now (admin listings, tests). */
  template <typename T>
  std::vector<std::shared_ptr<T>> all() const {
    std::vector<std::shared_ptr<T>> found;
    for (const auto& [key, entry] : entries_) {
      if (entry.type == std::type_index(typeid(T))) {
        found.push_back(std::static_pointer_cast<T>(entry.value));
      }
    }
    return found;
  }

private:
  struct Entry {
    std::shared_ptr<void> value;
    std::type_index type;
    uint64_t used_in;
  };
  std::map<std::string, Entry> entries_;
  uint64_t generation_ = 0;
};

}  // namespace bulwark
