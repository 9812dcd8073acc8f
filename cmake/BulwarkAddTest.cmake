include(GoogleTest)
# bulwark_add_test(NAME n SOURCES ... DEPENDS ... LABELS unit|integration|fault|bench [TIMEOUT s])
# Each test case becomes its own ctest entry carrying LABELS, so `ctest -L unit` selects them.
function(bulwark_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;DEPENDS;LABELS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_DEPENDS} GTest::gmock_main bulwark_warnings)
  gtest_discover_tests(${T_NAME}
    DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT})
endfunction()
