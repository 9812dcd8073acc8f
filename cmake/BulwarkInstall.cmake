# Install layout (`cmake --install build --prefix P`), shared by the Debian package
# (cmake/BulwarkPackaging.cmake) and the container image (deploy/container/Containerfile):
#   P/bin/bulwark                          the proxy                      component bulwark
#   P/lib/systemd/system/bulwark.service   the unit, paths rewritten to P component bulwark
#   P/share/doc/bulwark/                   README, docs/, example configs component bulwark
#   ETC/bulwark/bulwark.yaml               the default config             component bulwark
#   ETC/logrotate.d/bulwark                log rotation for the access log component bulwark
#   P/libexec/bulwark/                     example backends               component examples
# ETC is /etc when P is /usr (the FHS and Debian place), else P/etc, so a trial install under a
# scratch prefix never writes to the real /etc.
include(GNUInstallDirs)

# build_info.h: the git revision, regenerated on every build (see BulwarkGenerateBuildInfo.cmake).
set(BULWARK_GIT_REVISION "" CACHE STRING
    "Revision to report when the source tree has no git metadata (empty: ask git)")
set(BULWARK_BUILD_INFO_DIR ${PROJECT_BINARY_DIR}/generated)
set(BULWARK_BUILD_INFO_HEADER ${BULWARK_BUILD_INFO_DIR}/bulwark/build_info.h)
add_custom_target(bulwark_build_info
  COMMAND ${CMAKE_COMMAND} -DSOURCE_DIR=${PROJECT_SOURCE_DIR}
          -DOUTPUT=${BULWARK_BUILD_INFO_HEADER} -DVERSION=${PROJECT_VERSION}
          -DREVISION_OVERRIDE=${BULWARK_GIT_REVISION}
          -P ${CMAKE_CURRENT_LIST_DIR}/BulwarkGenerateBuildInfo.cmake
  BYPRODUCTS ${BULWARK_BUILD_INFO_HEADER}
  COMMENT "build_info.h (git revision)"
  VERBATIM)
if(TARGET bulwark)
  add_dependencies(bulwark bulwark_build_info)
  target_include_directories(bulwark PRIVATE ${BULWARK_BUILD_INFO_DIR})

  install(TARGETS bulwark RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT bulwark)
endif()

foreach(example ranking-server ranking-client task-server recommendation-server)
  if(TARGET ${example})
    install(TARGETS ${example} RUNTIME DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/bulwark
            COMPONENT examples)
  endif()
endforeach()

set(BULWARK_DOC_DIR ${CMAKE_INSTALL_DATADIR}/doc/bulwark)
install(FILES README.md DESTINATION ${BULWARK_DOC_DIR} COMPONENT bulwark)
install(DIRECTORY docs/ DESTINATION ${BULWARK_DOC_DIR}/docs COMPONENT bulwark
        FILES_MATCHING PATTERN "*.md")
install(FILES examples/edge.yaml DESTINATION ${BULWARK_DOC_DIR}/examples COMPONENT bulwark)
install(FILES deploy/bulwark.yaml DESTINATION ${BULWARK_DOC_DIR}/examples RENAME edge-systemd.yaml
        COMPONENT bulwark)
foreach(example ranking task recommendation)
  install(FILES examples/${example}/bulwark.yaml DESTINATION ${BULWARK_DOC_DIR}/examples
          RENAME ${example}.yaml COMPONENT bulwark)
endforeach()
install(DIRECTORY deploy/k8s deploy/monitoring deploy/systemd deploy/container
        DESTINATION ${BULWARK_DOC_DIR}/deploy COMPONENT bulwark PATTERN ".*" EXCLUDE)

# Files whose place or content depends on the prefix chosen at install time (--prefix, CPack's
# /usr): decided in install(CODE), where CMAKE_INSTALL_PREFIX is the final one.
set(bulwark_install_code [[
  if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
    set(bulwark_etc "/etc")
  else()
    set(bulwark_etc "${CMAKE_INSTALL_PREFIX}/etc")
  endif()
  file(INSTALL DESTINATION "${bulwark_etc}/bulwark" TYPE FILE
       FILES "@PROJECT_SOURCE_DIR@/deploy/etc/bulwark.yaml")
  file(INSTALL DESTINATION "${bulwark_etc}/logrotate.d" TYPE FILE
       RENAME bulwark FILES "@PROJECT_SOURCE_DIR@/deploy/systemd/bulwark.logrotate")
  # The shipped unit names /usr/bin and /etc; an install elsewhere gets its own paths.
  file(READ "@PROJECT_SOURCE_DIR@/deploy/systemd/bulwark.service" unit)
  string(REPLACE "/usr/bin/bulwark" "${CMAKE_INSTALL_PREFIX}/bin/bulwark" unit "${unit}")
  string(REPLACE "/etc/bulwark/" "${bulwark_etc}/bulwark/" unit "${unit}")
  file(WRITE "@PROJECT_BINARY_DIR@/install-staging/bulwark.service" "${unit}")
  file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system" TYPE FILE
       FILES "@PROJECT_BINARY_DIR@/install-staging/bulwark.service")
]])
string(CONFIGURE "${bulwark_install_code}" bulwark_install_code @ONLY)
install(CODE "${bulwark_install_code}" COMPONENT bulwark)
