// The access log's failure path: bytes a full disk refuses are dropped (memory stays bounded)
// and counted, never silently.

#include "proxy/http/access_log.h"

#include <gtest/gtest.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>

namespace bulwark::http {
namespace {

TEST(AccessLogTest, BytesAFullDiskRefusesAreDroppedAndCounted) {
  auto log = AccessLog::open({.path = "/dev/full"});
  ASSERT_TRUE(log) << log.error();
  ASSERT_NE(nullptr, *log);
  prometheus::Registry registry;
  auto& dropped = prometheus::BuildCounter().Name("dropped").Register(registry).Add({});
  (*log)->setDroppedBytesCounter(&dropped);
  LogEntry entry;
  entry.add("path", "/a");
  (*log)->write(entry);
  (*log)->write(entry);
  (*log)->flush();
  // Two lines of `{"path":"/a"}` and a newline: 14 bytes each.
  EXPECT_EQ(2 * 14, dropped.Value());
  (*log)->write(entry);
  (*log)->flush();
  EXPECT_EQ(3 * 14, dropped.Value());
}

}  // namespace
}  // namespace bulwark::http
