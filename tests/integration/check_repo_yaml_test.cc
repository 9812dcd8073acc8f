// `bulwark check` accepts every bulwark config shipped in the repository (examples, benchmarks,
// good test data, later deploy/), so a file cannot drift from what the loader accepts. Files
// meant to be rejected (tests/data/config/bad/, the fuzz corpora) and build trees are skipped; YAML
// that is not a bulwark config (Kubernetes manifests, compose files) is skipped by its top-level
// `kind: ProxyConfig`.

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <set>

#include <gtest/gtest.h>

#include "tests/integration/bulwark_process.h"
#include "tests/integration/test_pki.h"
#include "tests/support/process.h"

namespace bulwark::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const fs::path kRepo = BULWARK_SOURCE_DIR;

/** A build tree (CMake's cache), the git dir or another hidden directory: not repository files. */
bool skipDirectory(const fs::path& dir) {
  const std::string name = dir.filename().string();
  if (!name.empty() && name.front() == '.') {
    return true;
  }
  if (fs::exists(dir / "CMakeCache.txt")) {
    return true;
  }
  const fs::path relative = fs::relative(dir, kRepo);
  return relative == fs::path("tests/data/config/bad") || relative == fs::path("tests/fuzz/corpus");
}

/** A top-level `kind: ProxyConfig` line; nested (indented) ones, e.g. in a ConfigMap, don't count.
 */
bool isBulwarkConfig(const fs::path& file) {
  static const std::regex kKind(R"(^kind:\s*["']?ProxyConfig["']?\s*(#.*)?$)");
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    if (std::regex_match(line, kKind)) {
      return true;
    }
  }
  return false;
}

std::vector<fs::path> repoConfigs() {
  std::vector<fs::path> out;
  fs::recursive_directory_iterator it(kRepo, fs::directory_options::skip_permission_denied), end;
  for (; it != end; ++it) {
    if (it->is_directory()) {
      if (skipDirectory(it->path())) {
        it.disable_recursion_pending();
      }
      continue;
    }
    const std::string ext = it->path().extension().string();
    if (it->is_regular_file() && (ext == ".yaml" || ext == ".yml") && isBulwarkConfig(it->path())) {
      out.push_back(it->path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Where the Kubernetes manifests mount their TLS Secrets (kubernetes.io/tls keys tls.crt, tls.key,
// ca.crt): a config naming them is checked against a test PKI's files in their place.
constexpr std::array<std::string_view, 2> kSecretMounts = {"/etc/bulwark-tls/",
                                                           "/etc/bulwark-mesh/"};

/** A directory laid out like a mounted kubernetes.io/tls Secret, from a throwaway CA. */
std::string secretDirectory() {
  static const std::string dir = [] {
    std::string error;
    auto pki = TestPki::create("check-repo-ca", &error);
    EXPECT_TRUE(pki) << error;
    auto cert = pki ? pki->issue("check.test", "DNS:check.test", &error) : std::nullopt;
    EXPECT_TRUE(cert) << error;
    const fs::path out = fs::path(writeTempFile("README", "test Secret\n")).parent_path();
    if (cert) {
      const auto overwrite = fs::copy_options::overwrite_existing;
      fs::copy_file(cert->certificate, out / "tls.crt", overwrite);
      fs::copy_file(cert->key, out / "tls.key", overwrite);
      fs::copy_file(pki->caCertificate(), out / "ca.crt", overwrite);
    }
    return out.string() + "/";
  }();
  return dir;
}

CliRun runCheck(const fs::path& file) {
  std::ifstream in(file);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  bool mounts_secrets = false;
  for (std::string_view mount : kSecretMounts) {
    for (size_t at = text.find(mount); at != std::string::npos; at = text.find(mount, at)) {
      text.replace(at, mount.size(), secretDirectory());
      mounts_secrets = true;
    }
  }
  const std::string path =
      mounts_secrets ? writeTempFile(file.filename().string(), text) : file.string();
  return runBulwarkCli({"check", "-c", path}, {}, deadlineIn(10s));
}

// Proves every shipped bulwark config passes `bulwark check`.
TEST(CheckRepoYamlTest, EveryBulwarkConfigInTheRepoPassesCheck) {
  const auto files = repoConfigs();
  for (const auto& file : files) {
    auto run = runCheck(file);
    EXPECT_EQ(std::optional<int>(0), run.code) << fs::relative(file, kRepo) << ":\n"
                                               << run.stderr_text;
  }
  // The walk itself must find the known configs, or this test would pass on nothing.
  std::set<std::string> found;
  for (const auto& file : files) {
    found.insert(fs::relative(file, kRepo).string());
  }
  for (const char* expected :
       {"examples/edge.yaml", "examples/ranking/bulwark.yaml", "examples/task/bulwark.yaml",
        "examples/recommendation/bulwark.yaml", "tests/data/config/good/edge.yaml"}) {
    EXPECT_TRUE(found.count(expected)) << expected << " not found by the walk";
  }
  for (const auto& f : found) {
    EXPECT_NE(0u, f.rfind("tests/data/config/bad/", 0)) << f;
  }
}

// Proves the harness tells a rejected file apart (the skipped bad configs do fail the check).
TEST(CheckRepoYamlTest, RejectedConfigFailsCheck) {
  auto run = runCheck(kRepo / "tests/data/config/bad/bad-kind.yaml");
  EXPECT_EQ(std::optional<int>(1), run.code) << run.stderr_text;
}

// Proves the kind filter: only top-level `kind: ProxyConfig` marks a bulwark config.
TEST(CheckRepoYamlTest, KindFilterSkipsOtherManifests) {
  const fs::path manifest = writeTempFile("configmap.yaml",
                                          "apiVersion: v1\n"
                                          "kind: ConfigMap\n"
                                          "data:\n"
                                          "  config.yaml: |\n"
                                          "    kind: ProxyConfig\n");
  EXPECT_FALSE(isBulwarkConfig(manifest));
  const fs::path config =
      writeTempFile("config.yaml", "apiVersion: bulwark.dev/v1alpha1\nkind: ProxyConfig  # x\n");
  EXPECT_TRUE(isBulwarkConfig(config));
}

}  // namespace
}  // namespace bulwark::testing
