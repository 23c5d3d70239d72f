# install.cmake — what `make install` / `cmake --install` put where, relative to the prefix.
# Three components, as the Debian packages split them: runtime (the command, the preload
# library, heaptrail.1, bash completion), library (libheaptrail.so.0*) and development
# (headers, the libheaptrail.so link, libheaptrail.a, heaptrail.pc, the CMake package,
# heaptrail.3). LIBDIR is GNUInstallDirs' (lib, or lib/x86_64-linux-gnu for the prefix /usr
# on Debian); the preload library always goes to PREFIX/lib/heaptrail, where `record` looks
# for it relative to its own binary (BINDIR/../lib/heaptrail), whatever LIBDIR is.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(HT_PRELOAD_INSTALL_DIR lib/heaptrail)
set(HT_CMAKE_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/heaptrail)

install(TARGETS heaptrail_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
install(TARGETS heaptrail-preload LIBRARY DESTINATION ${HT_PRELOAD_INSTALL_DIR}
        COMPONENT runtime)
install(FILES ${PROJECT_SOURCE_DIR}/docs/man/heaptrail.1
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT runtime)
install(FILES ${PROJECT_SOURCE_DIR}/scripts/completion/heaptrail.bash
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME heaptrail
        COMPONENT runtime)

install(TARGETS heaptrail LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT library
        NAMELINK_COMPONENT development)

install(TARGETS heaptrail_static ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        COMPONENT development)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/heaptrail
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT development
        FILES_MATCHING PATTERN "*.h")
install(FILES ${PROJECT_SOURCE_DIR}/docs/man/heaptrail.3
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man3 COMPONENT development)

configure_file(${PROJECT_SOURCE_DIR}/cmake/heaptrail.pc.in
               ${PROJECT_BINARY_DIR}/heaptrail.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/heaptrail.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT development)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/heaptrail-config.cmake.in
  ${PROJECT_BINARY_DIR}/heaptrail-config.cmake
  INSTALL_DESTINATION ${HT_CMAKE_INSTALL_DIR}
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR CMAKE_INSTALL_LIBDIR)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/heaptrail-config-version.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/heaptrail-config.cmake
              ${PROJECT_BINARY_DIR}/heaptrail-config-version.cmake
        DESTINATION ${HT_CMAKE_INSTALL_DIR} COMPONENT development)
