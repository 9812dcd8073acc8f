# All dependencies come from Debian bookworm packages (scripts/install-deps.sh).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(OpenSSL REQUIRED)
pkg_check_modules(LIBEVENT REQUIRED IMPORTED_TARGET libevent_core libevent_extra libevent_pthreads libevent_openssl)
pkg_check_modules(NGHTTP2 REQUIRED IMPORTED_TARGET libnghttp2)
pkg_check_modules(CARES REQUIRED IMPORTED_TARGET libcares)
pkg_check_modules(RE2 REQUIRED IMPORTED_TARGET re2)
pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)
find_package(yaml-cpp REQUIRED)
find_package(prometheus-cpp REQUIRED COMPONENTS core)
find_package(nlohmann_json REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(spdlog REQUIRED)
find_package(fmt REQUIRED)
find_package(GTest REQUIRED)

# The bulwark binary's allocator. jemalloc's per-thread caches serve the proxy's pattern (many
# same-sized objects made and freed per request, dozens of streams in flight per worker) from
# the cache, where glibc's 7-entry tcache bins overflow into its slower bins; Envoy links
# tcmalloc for the same reason. Sanitizer and fuzz builds keep their own allocator.
if(BULWARK_SANITIZE OR BULWARK_FUZZ)
  set(BULWARK_ALLOCATOR system)
endif()
if(BULWARK_ALLOCATOR STREQUAL "jemalloc")
  pkg_check_modules(JEMALLOC REQUIRED IMPORTED_TARGET jemalloc)
elseif(NOT BULWARK_ALLOCATOR STREQUAL "system")
  message(FATAL_ERROR "BULWARK_ALLOCATOR must be jemalloc or system, not ${BULWARK_ALLOCATOR}")
endif()

# llhttp: Debian's node-llhttp ships the generated C sources; compile them into a static library.
set(LLHTTP_SOURCE_DIR /usr/share/llhttp)
set(LLHTTP_INCLUDE_DIR /usr/share/include/llhttp)
if(NOT EXISTS ${LLHTTP_SOURCE_DIR}/llhttp.c)
  message(FATAL_ERROR "llhttp sources not found in ${LLHTTP_SOURCE_DIR}: install node-llhttp")
endif()
add_library(llhttp STATIC ${LLHTTP_SOURCE_DIR}/llhttp.c ${LLHTTP_SOURCE_DIR}/api.c ${LLHTTP_SOURCE_DIR}/http.c)
target_include_directories(llhttp SYSTEM PUBLIC ${LLHTTP_INCLUDE_DIR})
set_target_properties(llhttp PROPERTIES POSITION_INDEPENDENT_CODE ON C_STANDARD 99)
target_compile_options(llhttp PRIVATE -O2 -w)

# gRPC (examples and test clients only; the proxy itself does not link it).
find_package(Protobuf QUIET)
find_package(gRPC QUIET CONFIG)
pkg_check_modules(GRPCPP IMPORTED_TARGET grpc++)
find_program(GRPC_CPP_PLUGIN grpc_cpp_plugin)
find_program(PROTOC protoc)
