# Debian packages from the build tree with CPack (scripts/package.sh; why CPack and not
# dpkg-buildpackage: docs/packaging.md). Two packages from the install components
# (cmake/BulwarkInstall.cmake):
#   bulwark           the proxy, its unit (installed, not enabled), /etc/bulwark/bulwark.yaml
#   bulwark-examples  the example backends under /usr/lib/bulwark... (libexec), for demos only;
#                     kept apart so the proxy does not depend on gRPC and protobuf.
# Depends come from dpkg-shlibdeps on the installed binaries, plus adduser for the postinst.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME bulwark)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "reliability proxy for HTTP/1.1, HTTP/2 and gRPC")
set(CPACK_PACKAGE_DESCRIPTION
    "bulwark sits in front of a service as a sidecar or an edge proxy and protects its traffic\n"
    "per route: timeouts, retries with budgets, hedging, circuit breakers, outlier detection,\n"
    "rate limits, bulkheads, adaptive load shedding and fallbacks.")
set(CPACK_PACKAGE_CONTACT "bulwark maintainers <bulwark@localhost>")
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/packages)
set(CPACK_STRIP_FILES ON)
# Install with DESTDIR and prefix /usr, so the install rules see the real prefix and put the
# config under /etc (BulwarkInstall.cmake decides that from CMAKE_INSTALL_PREFIX).
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL bulwark)
if(BULWARK_BUILD_EXAMPLES)
  list(APPEND CPACK_COMPONENTS_ALL examples)
endif()
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_BULWARK_PACKAGE_NAME bulwark)
set(CPACK_DEBIAN_BULWARK_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_BULWARK_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/deploy/debian/conffiles ${PROJECT_SOURCE_DIR}/deploy/debian/postinst
    ${PROJECT_SOURCE_DIR}/deploy/debian/prerm ${PROJECT_SOURCE_DIR}/deploy/debian/postrm)
set(CPACK_DEBIAN_EXAMPLES_PACKAGE_NAME bulwark-examples)
set(CPACK_DEBIAN_EXAMPLES_PACKAGE_SECTION net)
set(CPACK_COMPONENT_EXAMPLES_DESCRIPTION
    "Example backends for bulwark (ranking gRPC service, task and recommendation HTTP services)")
include(CPack)
