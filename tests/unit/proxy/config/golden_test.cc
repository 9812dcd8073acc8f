// Golden error messages: each tests/data/config/bad/NAME.yaml has NAME.expected with the exact
// diagnostics, FILE standing for the path of the YAML file.

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "proxy/config/parser.h"
#include "tests/unit/proxy/config/test_util.h"

namespace bulwark::config {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> yamlFilesIn(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(test::dataPath(dir))) {
    if (entry.path().extension() == ".yaml") {
      names.push_back(entry.path().stem().string());
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> readExpected(const std::string& path, const std::string& yaml_path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "missing golden file " << path;
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("FILE", 0) == 0) {
      line = yaml_path + line.substr(4);
    }
    lines.push_back(line);
  }
  return lines;
}

class BadConfigTest : public ::testing::TestWithParam<std::string> {};

// The file is rejected with exactly the expected messages.
TEST_P(BadConfigTest, MatchesGoldenMessages) {
  const std::string yaml_path = test::dataPath("bad/" + GetParam() + ".yaml");
  LoadResult result = loadConfigFile(yaml_path);
  EXPECT_FALSE(result.ok());
  EXPECT_FALSE(result.unreadable);
  EXPECT_GE(countErrors(result.diagnostics), 1u);
  const auto expected = readExpected(test::dataPath("bad/" + GetParam() + ".expected"), yaml_path);
  EXPECT_THAT(test::formatted(result), ::testing::ElementsAreArray(expected));
}

INSTANTIATE_TEST_SUITE_P(Golden, BadConfigTest, ::testing::ValuesIn(yamlFilesIn("bad")),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

class GoodConfigTest : public ::testing::TestWithParam<std::string> {};

// Every good file loads without errors (what `bulwark check` accepts).
TEST_P(GoodConfigTest, Loads) {
  LoadResult result = loadConfigFile(test::dataPath("good/" + GetParam() + ".yaml"));
  EXPECT_TRUE(result.ok()) << ::testing::PrintToString(test::formatted(result));
}

INSTANTIATE_TEST_SUITE_P(Good, GoodConfigTest, ::testing::ValuesIn(yamlFilesIn("good")),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// The golden set stays broad (at least 20 files) and has no orphan files.
TEST(GoldenSetTest, CoversEnoughFilesAndHasNoOrphans) {
  EXPECT_GE(yamlFilesIn("bad").size(), 25u);
  for (const auto& entry : fs::directory_iterator(test::dataPath("bad"))) {
    if (entry.path().extension() == ".expected") {
      fs::path yaml = entry.path();
      yaml.replace_extension(".yaml");
      EXPECT_TRUE(fs::exists(yaml)) << "orphan golden file " << entry.path();
    }
  }
}

}  // namespace
}  // namespace bulwark::config
