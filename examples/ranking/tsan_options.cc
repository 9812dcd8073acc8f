// ThreadSanitizer defaults of ranking-server and ranking-client (linked into both; empty in other
// builds). TSAN_OPTIONS from the environment still applies on top.
//
// gRPC, protobuf, Abseil and OpenSSL come from Debian, built without -fsanitize=thread. Their
// locks and thread hand-offs are invisible to TSan, so each free() or memcpy() they make of memory
// another thread touched reads as a race: tests/tsan.supp suppresses those reports, but TSan still
// detects and symbolizes each one, which made these binaries about ten times slower than they
// need to be (1,000 unary calls at concurrency 16: 39 calls/s, against 449 with this option),
// long enough for the gRPC tests' deadlines to expire. ignore_noninstrumented_modules=1 makes
// the interceptors skip calls that come from those libraries; the binaries' own code is checked
// as before. bulwark links none of them and keeps the default.
#if defined(__SANITIZE_THREAD__)
extern "C" const char* __tsan_default_options() { return "ignore_noninstrumented_modules=1"; }
#endif
