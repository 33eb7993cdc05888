# install_consumer: installs this build into a scratch prefix and builds an
# out-of-tree program against it twice, with find_package(weft) (shared and
# static) and with pkg-config (shared and static), then runs each one: it
# starts a server on a free loopback port and echoes bytes through it.
# See tests/install/run.sh.
string(JOIN " " _weft_install_tools ${WEFT_TOOLS})
add_test(NAME install_consumer
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/install/run.sh
                 ${CMAKE_BINARY_DIR} ${CMAKE_CURRENT_SOURCE_DIR}/install
                 ${CMAKE_CURRENT_BINARY_DIR}/install_consumer $<CONFIG>)
set_tests_properties(install_consumer PROPERTIES
  TIMEOUT 300
  ENVIRONMENT "WEFT_CMAKE=${CMAKE_COMMAND};WEFT_CC=${CMAKE_C_COMPILER};WEFT_VERSION=${PROJECT_VERSION};WEFT_LIBDIR=${CMAKE_INSTALL_LIBDIR};WEFT_INCLUDEDIR=${CMAKE_INSTALL_INCLUDEDIR};WEFT_BINDIR=${CMAKE_INSTALL_BINDIR};WEFT_TOOLS=${_weft_install_tools};WEFT_SANITIZE=${WEFT_SANITIZE}")
unset(_weft_install_tools)
