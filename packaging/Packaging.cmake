# Installation helpers and the Debian package (CPack DEB).
#
#   cmake -S . -B build -DEZIO_BUILD_TESTS=OFF
#   cmake --build build -j2
#   (cd build && cpack -G DEB)        # -> build/ezio_<version>_<arch>.deb
#
# The .deb always installs below /usr (CPACK_PACKAGING_INSTALL_PREFIX),
# whatever prefix the build tree was configured with: install locations are
# relative to the prefix or absolute Debian locations from pkg-config
# (systemd, udev, bash-completion), and files that name an installed path
# are configured at install time (ezio_install_configured).

# ezio_install_configured(SOURCE NAME DESTINATION): installs SOURCE, from the
# current source directory, as NAME in DESTINATION after replacing
# @EZIO_SBINDIR@ / @EZIO_BINDIR@ (and @CMAKE_INSTALL_FULL_SBINDIR@ /
# @CMAKE_INSTALL_FULL_BINDIR@) with where the binaries are installed. Done at
# install time, so the prefix is the one in effect then: `cmake --install
# --prefix /usr` and CPack give /usr/sbin/eziod, not the configured
# /usr/local/sbin/eziod.
function(ezio_install_configured source name destination)
  set(src ${CMAKE_CURRENT_SOURCE_DIR}/${source})
  set(out ${CMAKE_CURRENT_BINARY_DIR}/install-time/${name})
  install(CODE "
    foreach(kind SBINDIR BINDIR)
      set(dir \"\${CMAKE_INSTALL_\${kind}}\")
      if(NOT dir)
        if(kind STREQUAL SBINDIR)
          set(dir \"${CMAKE_INSTALL_SBINDIR}\")
        else()
          set(dir \"${CMAKE_INSTALL_BINDIR}\")
        endif()
      endif()
      if(NOT IS_ABSOLUTE \"\${dir}\")
        set(dir \"\${CMAKE_INSTALL_PREFIX}/\${dir}\")
      endif()
      set(EZIO_\${kind} \"\${dir}\")
      set(CMAKE_INSTALL_FULL_\${kind} \"\${dir}\")
    endforeach()
    configure_file(\"${src}\" \"${out}\" @ONLY)
  ")
  install(FILES ${out} DESTINATION ${destination})
endfunction()

# --- the .deb -------------------------------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME ezio)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "deploy disk images to many machines at once with BitTorrent")
set(CPACK_PACKAGE_DESCRIPTION
    "eziod receives partclone partition images from BitTorrent peers and writes\n"
    "every block straight to its place on a raw partition, while serving the\n"
    "blocks it already has to the other machines. ezioctl drives it over D-Bus.\n"
    "With auto-deploy, a PXE-booted or freshly racked machine images itself at\n"
    "boot.")
string(REPLACE ";" "" CPACK_PACKAGE_DESCRIPTION "${CPACK_PACKAGE_DESCRIPTION}")
set(CPACK_PACKAGE_CONTACT "ezio maintainers <ezio@localhost>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# Absolute destinations (/lib/systemd/system, /lib/udev) go below the staging
# directory through DESTDIR.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/tjjh89017/ezio")
# Shared libraries (libtorrent-rasterbar2.0, libsdbus-c++1, libsystemd0,
# libudev1, libcurl4, libstdc++6, libc6, ...) from dpkg-shlibdeps; the rest by
# hand: eziod needs a system bus to live on, systemd-sysusers or groupadd
# (passwd) makes group "ezio"; partclone captures images.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "default-dbus-system-bus | dbus-system-bus, systemd | passwd")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "systemd, partclone")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "transmission-cli")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_CURRENT_LIST_DIR}/deb/postinst
    ${CMAKE_CURRENT_LIST_DIR}/deb/prerm
    ${CMAKE_CURRENT_LIST_DIR}/deb/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)
