# np_install_package(<target> <lib name> <description> <pkg-config requires>
#                    <private libs> [<CMake package dependencies>...])
# Installs the pkg-config file <lib name>.pc and the CMake package
# <target>Config.cmake (imported target np::<target>) of a shared library
# that install(TARGETS ... EXPORT <target>Targets) already installs.
include(CMakePackageConfigHelpers)
function(np_install_package target lib desc requires libs_private)
  set(NP_PKG_TARGET ${target})
  set(NP_PKG_LIB ${lib})
  set(NP_PKG_DESC ${desc})
  set(NP_PKG_REQUIRES ${requires})
  set(NP_PKG_LIBS_PRIVATE ${libs_private})
  set(NP_PKG_DEPS ${ARGN})
  set(dir ${CMAKE_INSTALL_LIBDIR}/cmake/${target})
  configure_file(${PROJECT_SOURCE_DIR}/cmake/lib.pc.in
    ${CMAKE_CURRENT_BINARY_DIR}/${lib}.pc @ONLY)
  install(FILES ${CMAKE_CURRENT_BINARY_DIR}/${lib}.pc
    DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
  install(EXPORT ${target}Targets NAMESPACE np::
    DESTINATION ${dir})
  configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/Config.cmake.in
    ${CMAKE_CURRENT_BINARY_DIR}/${target}Config.cmake
    INSTALL_DESTINATION ${dir})
  write_basic_package_version_file(
    ${CMAKE_CURRENT_BINARY_DIR}/${target}ConfigVersion.cmake
    COMPATIBILITY SameMajorVersion)
  install(FILES ${CMAKE_CURRENT_BINARY_DIR}/${target}Config.cmake
    ${CMAKE_CURRENT_BINARY_DIR}/${target}ConfigVersion.cmake
    DESTINATION ${dir})
endfunction()
