include(GoogleTest)

# Sanitizer options every test and the children it spawns (bulwark, backends) run with; prepended,
# so options already in the environment (log_path=..., a debugging session's) still win.
set(BULWARK_TEST_ENV_MODIFICATION "")
if(BULWARK_SANITIZE MATCHES "address")
  # ASan parks freed memory in a 256 MiB quarantine, which the RSS bounds of the large-body and
  # rapid-reset tests measure as growth (16 MiB still left RapidReset at 34-37 MiB of its 32);
  # 4 MiB still catches a use after free within a loop turn or a few.
  set(BULWARK_TEST_ENV_MODIFICATION "ASAN_OPTIONS=string_prepend:quarantine_size_mb=4:")
elseif(BULWARK_SANITIZE MATCHES "thread")
  # Races inside libraries built without TSan (gRPC and its dependencies, in the example
  # backends): see the file for what is suppressed and why.
  set(BULWARK_TEST_ENV_MODIFICATION
      "TSAN_OPTIONS=string_prepend:suppressions=${CMAKE_CURRENT_LIST_DIR}/../tests/tsan.supp:")
endif()
# bulwark_add_test(NAME n SOURCES ... DEPENDS ... LABELS unit|integration|fault|bench [TIMEOUT s])
# Each test case becomes its own ctest entry carrying LABELS, so `ctest -L unit` selects them.
function(bulwark_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;DEPENDS;LABELS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_DEPENDS} GTest::gmock_main bulwark_warnings)
  set(env_property "")
  if(BULWARK_TEST_ENV_MODIFICATION)
    set(env_property ENVIRONMENT_MODIFICATION "${BULWARK_TEST_ENV_MODIFICATION}")
  endif()
  gtest_discover_tests(${T_NAME}
    DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT} ${env_property})
endfunction()
