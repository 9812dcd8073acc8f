// bulwark is built in floors (docs/architecture.md, "Layers"): a file may include its own folder
// and the floors below it, never one above nor a neighbour on the same floor. This test reads
// every #include "..." of common/, policies/, proxy/ and filters/ and fails on one that runs
// upward or sideways, naming the file, the line and the two folders.

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace {

/** The floor of a folder (the first one or two path components of a bulwark header). */
struct Floor {
  std::string folder;
  int level;
};

const std::vector<Floor>& floors() {
  static const std::vector<Floor> kFloors = {
      {"common", 0},        {"policies", 1},     {"proxy/config", 1}, {"proxy/event", 2},
      {"proxy/network", 3}, {"proxy/stats", 3},  {"proxy/http", 4},   {"proxy/upstream", 5},
      {"proxy/tracing", 5}, {"proxy/router", 6}, {"proxy/redis", 6},  {"filters", 7},
      {"proxy/server", 8},  {"proxy", 9},
  };
  return kFloors;
}

/** The floor `path` (relative to the repository root) belongs to: the longest matching folder. */
std::optional<Floor> floorOf(const std::string& path) {
  std::optional<Floor> best;
  for (const auto& floor : floors()) {
    const std::string prefix = floor.folder + "/";
    if (path.rfind(prefix, 0) == 0 && (!best || floor.folder.size() > best->folder.size())) {
      best = floor;
    }
  }
  return best;
}

/** "file:line: includes X (folder a, floor n) from folder b (floor m)" for each bad include. */
std::vector<std::string> violations(const std::string& file, const std::string& text) {
  static const std::regex kInclude(R"(^\s*#\s*include\s*"([^"]+)\")");
  std::vector<std::string> found;
  const auto from = floorOf(file);
  if (!from) {
    return found;
  }
  std::istringstream lines(text);
  std::string line;
  int number = 0;
  while (std::getline(lines, line)) {
    ++number;
    std::smatch m;
    if (!std::regex_search(line, m, kInclude)) {
      continue;
    }
    const auto to = floorOf(m[1].str());
    if (!to || to->folder == from->folder || to->level < from->level) {
      continue;
    }
    found.push_back(file + ":" + std::to_string(number) + ": includes \"" + m[1].str() + "\" (" +
                    to->folder + ", floor " + std::to_string(to->level) + ") from " + from->folder +
                    " (floor " + std::to_string(from->level) + ")");
  }
  return found;
}

// The scanner must flag each kind of bad include, or the real scan proves nothing.
TEST(LayeringTest, ScannerFlagsUpwardAndSidewaysIncludes) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"policies/retry/retry_policy.h", "#include \"proxy/http/headers.h\""},
      {"common/result.h", "#include \"policies/time.h\""},
      {"proxy/http/codec.h", "#include \"proxy/router/router.h\""},
      {"proxy/http/filter.h", "#include \"proxy/server/worker_context.h\""},
      {"proxy/router/router.h", "#include \"proxy/server/config_snapshot.h\""},
      {"proxy/config/spec.h", "#include \"policies/outcome.h\""},  // same floor, other folder
      {"filters/builtin.cc", "#include \"proxy/server/server.h\""},
  };
  for (const auto& [file, line] : bad) {
    EXPECT_FALSE(violations(file, line).empty()) << file << ": " << line;
  }
  const std::vector<std::pair<std::string, std::string>> good = {
      {"policies/retry/retry_policy.h", "#include \"common/result.h\""},
      {"proxy/router/router.h", "#include \"proxy/upstream/conn_pool.h\""},
      {"proxy/server/active_stream.h", "#include \"proxy/router/router.h\""},
      {"proxy/http/codec.h", "#include <event2/buffer.h>"},
      {"proxy/main.cc", "#include \"filters/builtin.h\""},
  };
  for (const auto& [file, line] : good) {
    EXPECT_TRUE(violations(file, line).empty()) << file << ": " << line;
  }
}

TEST(LayeringTest, NoIncludeRunsUpwardOrSideways) {
  namespace fs = std::filesystem;
  const fs::path root(BULWARK_SOURCE_DIR);
  size_t scanned = 0;
  std::vector<std::string> found;
  for (const char* top : {"common", "policies", "proxy", "filters"}) {
    ASSERT_TRUE(fs::is_directory(root / top)) << root / top;
    for (const auto& entry : fs::recursive_directory_iterator(root / top)) {
      const auto ext = entry.path().extension();
      if (!entry.is_regular_file() || (ext != ".h" && ext != ".cc")) {
        continue;
      }
      std::ifstream in(entry.path());
      std::stringstream text;
      text << in.rdbuf();
      auto v = violations(fs::relative(entry.path(), root).string(), text.str());
      found.insert(found.end(), v.begin(), v.end());
      ++scanned;
    }
  }
  EXPECT_GE(scanned, 150u);  // a near-empty scan means a wrong root
  for (const auto& v : found) {
    ADD_FAILURE() << v;
  }
}

}  // namespace
