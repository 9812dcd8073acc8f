// policies/ must stay pure (docs/architecture.md, layers): no libevent, nghttp2 or sockets, no
// sleeping, no clock reads. This test scans every policies/**/*.{h,cc} and fails on a violation.

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace {

struct Rule {
  const char* what;
  std::regex pattern;
};

const std::vector<Rule>& rules() {
  static const std::vector<Rule> kRules = {
      {"libevent include", std::regex(R"(#\s*include\s*[<"]event2/)")},
      {"nghttp2 include", std::regex(R"(#\s*include\s*[<"]nghttp2/)")},
      {"socket include",
       std::regex(R"(#\s*include\s*[<"](sys/socket|netinet/|arpa/inet|netdb)\.?h?)")},
      {"openssl/c-ares include", std::regex(R"(#\s*include\s*[<"](openssl/|ares\.h))")},
      {"<thread> include", std::regex(R"(#\s*include\s*<thread>)")},
      {"sleep", std::regex(R"(\b(sleep_for|sleep_until|usleep|nanosleep)\s*\()")},
      {"sleep()", std::regex(R"((^|[^_\w.:>])sleep\s*\()")},
      {"clock read",
       std::regex(R"(\b(steady_clock|system_clock|high_resolution_clock)\s*::\s*now\b)")},
      {"C clock read",
       std::regex(R"(\b(clock_gettime|gettimeofday)\s*\(|\btime\s*\(\s*(nullptr|NULL|0)\s*\))")},
  };
  return kRules;
}

// Returns "file:line: what" for every violation in `text`.
std::vector<std::string> violations(const std::string& name, const std::string& text) {
  std::vector<std::string> found;
  std::istringstream lines(text);
  std::string line;
  int number = 0;
  while (std::getline(lines, line)) {
    ++number;
    // std::regex is slow; only lines with a candidate keyword are worth matching.
    if (line.find("include") == std::string::npos && line.find("sleep") == std::string::npos &&
        line.find("now") == std::string::npos && line.find("time") == std::string::npos &&
        line.find("clock") == std::string::npos) {
      continue;
    }
    for (const auto& rule : rules()) {
      if (std::regex_search(line, rule.pattern)) {
        found.push_back(name + ":" + std::to_string(number) + ": " + rule.what + ": " + line);
      }
    }
  }
  return found;
}

// The scanner itself must catch each kind of violation, or the real scan proves nothing.
TEST(PoliciesNoIoTest, ScannerFlagsEveryForbiddenPattern) {
  const std::vector<std::string> bad = {
      "#include <event2/event.h>",
      "#include \"nghttp2/nghttp2.h\"",
      "#include <sys/socket.h>",
      "#include <netinet/in.h>",
      "#include <openssl/ssl.h>",
      "#include <thread>",
      "std::this_thread::sleep_for(1ms);",
      "  sleep(1);",
      "auto t = std::chrono::steady_clock::now();",
      "auto w = system_clock::now();",
      "clock_gettime(CLOCK_MONOTONIC, &ts);",
      "time_t t = time(nullptr);",
  };
  for (const auto& line : bad) {
    EXPECT_FALSE(violations("sample", line).empty()) << line;
  }
  const std::vector<std::string> good = {
      "#include <chrono>",
      "#include \"policies/time.h\"",
      "MonotonicTime now",
      "Duration remainingOpen(MonotonicTime now) const;",
      "using MonotonicTime = std::chrono::steady_clock::time_point;",
      "bool eventually = true;",
  };
  for (const auto& line : good) {
    EXPECT_TRUE(violations("sample", line).empty()) << line;
  }
}

// Every policy source is free of I/O and clock reads.
TEST(PoliciesNoIoTest, PolicySourcesHaveNoIoOrClockReads) {
  namespace fs = std::filesystem;
  const fs::path root(BULWARK_POLICIES_DIR);
  ASSERT_TRUE(fs::is_directory(root)) << root;
  size_t scanned = 0;
  std::vector<std::string> found;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
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
  // outcome, retry/*, circuit_breaker/*, ... : a near-empty scan means a wrong path.
  EXPECT_GE(scanned, 15u);
  for (const auto& v : found) {
    ADD_FAILURE() << v;
  }
}

}  // namespace
