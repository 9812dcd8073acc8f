#pragma once

#include <cstdio>
#include <cstdlib>

// Envoy's three levels: RELEASE_ASSERT for the unrecoverable, ASSERT for debug-only invariants.
// Never assert on anything peer traffic, DNS or a backend can cause.
#define BULWARK_RELEASE_ASSERT(cond, msg)                                                       \
  do {                                                                                          \
    if (!(cond)) {                                                                              \
      std::fprintf(stderr, "bulwark: assertion failed at %s:%d: %s (%s)\n", __FILE__, __LINE__, \
                   #cond, msg);                                                                 \
      std::abort();                                                                             \
    }                                                                                           \
  } while (false)

#ifdef NDEBUG
#define BULWARK_ASSERT(cond) \
  do {                       \
  } while (false && (cond))
#else
#define BULWARK_ASSERT(cond) BULWARK_RELEASE_ASSERT(cond, "debug invariant")
#endif
