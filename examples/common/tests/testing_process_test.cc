#include <chrono>
#include <string>

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include "examples/common/testing/process.h"

namespace bulwark::examples {
namespace {

void runShell(const std::string& script) {
  auto child = testing::ChildProcess::spawn("/bin/sh", {"-c", script});
  ASSERT_TRUE(child.isOk()) << child.error();
  EXPECT_EQ(0, (*child)->waitExit(std::chrono::seconds(10)));
}

// A sanitizer report on a server's stderr fails the test that spawned it (servers are mostly
// SIGKILLed at the end of a test, so their exit status shows nothing); other stderr output,
// which is still copied to the test's stderr, does not.
TEST(ExampleChildProcessTest, SanitizerReportOnStderrFailsTheTest) {
  EXPECT_NONFATAL_FAILURE(
      runShell("echo '==4242==ERROR: AddressSanitizer: heap-use-after-free on 0x6100' >&2"),
      "heap-use-after-free");
  EXPECT_NONFATAL_FAILURE(runShell("echo 'WARNING: ThreadSanitizer: data race (pid=4242)' >&2"),
                          "data race");
  EXPECT_NONFATAL_FAILURE(
      runShell("echo 'server.cc:12:5: runtime error: signed integer overflow' >&2"),
      "signed integer overflow");
  runShell("echo 'warn: feature store unreachable' >&2");
}

}  // namespace
}  // namespace bulwark::examples
