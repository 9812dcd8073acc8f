# BULWARK_FUZZ=ON builds only the libFuzzer targets of tests/fuzz, with clang (Debian's clang 14
# and its libclang_rt.fuzzer), ASan and UBSan on every target. Use a build directory of its own:
#   cmake -S . -B build-fuzz -G Ninja -DBULWARK_FUZZ=ON -DCMAKE_C_COMPILER=clang \
#         -DCMAKE_CXX_COMPILER=clang++
if(BULWARK_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "BULWARK_FUZZ needs clang (libFuzzer): configure a separate build "
                        "directory with -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++")
  endif()
  if(BULWARK_SANITIZE)
    message(FATAL_ERROR "BULWARK_FUZZ already builds with ASan and UBSan; leave BULWARK_SANITIZE "
                        "empty")
  endif()
  # fuzzer-no-link: coverage instrumentation everywhere; only the fuzz targets link libFuzzer's
  # main (-fsanitize=fuzzer, tests/fuzz/CMakeLists.txt).
  add_compile_options(-fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
