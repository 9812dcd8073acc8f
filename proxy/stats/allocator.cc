#include "proxy/stats/allocator.h"

#include <cstddef>

#include <dlfcn.h>
#include <malloc.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
// g++ ships no <sanitizer/allocator_interface.h> (clang does); the runtime exports the function
// under both compilers, so it is declared here.
extern "C" size_t __sanitizer_get_current_allocated_bytes();
#define BULWARK_SANITIZER_ALLOCATOR 1
#endif

namespace bulwark::stats {
namespace {

#ifndef BULWARK_SANITIZER_ALLOCATOR
// jemalloc's mallctl when jemalloc is the process's malloc. Its heap is not glibc's, so
// mallinfo2 would read an empty arena. Looked up at run time: the libraries need no link to
// jemalloc, and a preloaded jemalloc is found too.
using MallctlFn = int (*)(const char*, void*, size_t*, void*, size_t);

MallctlFn jemallocMallctl() {
  static const auto fn = reinterpret_cast<MallctlFn>(dlsym(RTLD_DEFAULT, "mallctl"));
  return fn;
}
#endif

}  // namespace

std::string_view allocatorName() {
#ifdef BULWARK_SANITIZER_ALLOCATOR
  return "sanitizer";
#else
  return jemallocMallctl() != nullptr ? "jemalloc" : "glibc";
#endif
}

uint64_t heapAllocatedBytes() {
#ifdef BULWARK_SANITIZER_ALLOCATOR
  return __sanitizer_get_current_allocated_bytes();
#else
  if (const MallctlFn mallctl = jemallocMallctl()) {
    // jemalloc caches its statistics until the epoch is advanced.
    uint64_t epoch = 1;
    size_t epoch_size = sizeof(epoch);
    size_t allocated = 0;
    size_t allocated_size = sizeof(allocated);
    if (mallctl("epoch", &epoch, &epoch_size, &epoch, epoch_size) == 0 &&
        mallctl("stats.allocated", &allocated, &allocated_size, nullptr, 0) == 0) {
      return allocated;
    }
  }
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
#endif
}

}  // namespace bulwark::stats
