#pragma once

// Which malloc the process runs on and how many bytes it has handed out: what the overload
// manager's heap limit reads, and a label of bulwark_build_info. Thread: any.

#include <cstdint>
#include <string_view>

namespace bulwark::stats {

/** "jemalloc" (linked into the binary or preloaded), "glibc", or "sanitizer" under ASan/TSan. */
std::string_view allocatorName();

/** Bytes allocated and not freed, as the allocator in use counts them. */
uint64_t heapAllocatedBytes();

}  // namespace bulwark::stats
