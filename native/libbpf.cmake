# libbpf from the pinned source (scripts/fetch-libbpf.sh fetches and checks it), built as a
# static -fPIC library and installed with its headers into build/libbpf/: the addon links it,
# the BPF object takes bpf_helpers.h, bpf_core_read.h and bpf_tracing.h from it, and
# bench/Makefile links the same copy, so all three agree on one libbpf.
include(ExternalProject)

file(STRINGS ${CMAKE_CURRENT_SOURCE_DIR}/native/libbpf.pin LIBBPF_PIN REGEX "^LIBBPF_[A-Z0-9_]+=")
foreach(line IN LISTS LIBBPF_PIN)
  string(REGEX MATCH "^([^=]+)=(.*)$" _ ${line})
  set(${CMAKE_MATCH_1} ${CMAKE_MATCH_2})
endforeach()

set(LIBBPF_CACHE ${CMAKE_CURRENT_SOURCE_DIR}/.cache/libbpf)
execute_process(
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/scripts/fetch-libbpf.sh ${LIBBPF_CACHE}
  OUTPUT_VARIABLE LIBBPF_TARBALL OUTPUT_STRIP_TRAILING_WHITESPACE
  RESULT_VARIABLE LIBBPF_FETCH_RESULT)
if(NOT LIBBPF_FETCH_RESULT EQUAL 0)
  message(FATAL_ERROR "libbpf's source could not be fetched (see above); scripts/setup.sh installs what the fetch needs")
endif()

# bench/Makefile names these paths too.
set(LIBBPF_DIR ${CMAKE_BINARY_DIR}/libbpf)
set(LIBBPF_INCLUDE_DIR ${LIBBPF_DIR}/include)
set(LIBBPF_STATIC ${LIBBPF_DIR}/lib/libbpf.a)
file(MAKE_DIRECTORY ${LIBBPF_INCLUDE_DIR})

find_library(LIBELF NAMES elf REQUIRED)
find_library(LIBZ NAMES z REQUIRED)
cmake_host_system_information(RESULT LIBBPF_JOBS QUERY NUMBER_OF_LOGICAL_CORES)

# -fPIC: the archive goes into a shared object (sockeye.node). The UAPI headers are installed
# beside libbpf's own, so code that includes <bpf/libbpf.h> sees the <linux/bpf.h> libbpf was
# compiled with, not whichever the build host's kernel headers carry (Debian 12's are 6.1's).
# Every header the install leaves, so that one build recompiles whatever includes a changed one.
set(LIBBPF_HEADERS)
foreach(h bpf.h libbpf.h btf.h libbpf_common.h libbpf_legacy.h bpf_helpers.h bpf_helper_defs.h
          bpf_tracing.h bpf_endian.h bpf_core_read.h skel_internal.h libbpf_version.h usdt.bpf.h)
  list(APPEND LIBBPF_HEADERS ${LIBBPF_INCLUDE_DIR}/bpf/${h})
endforeach()
foreach(h bpf.h bpf_common.h btf.h)
  list(APPEND LIBBPF_HEADERS ${LIBBPF_INCLUDE_DIR}/linux/${h})
endforeach()
set(LIBBPF_MAKE make -C <SOURCE_DIR>/src BUILD_STATIC_ONLY=1 OBJDIR=<BINARY_DIR>
    "CFLAGS=-O2 -fPIC" DESTDIR=${LIBBPF_DIR} PREFIX= LIBDIR=/lib INCLUDEDIR=/include UAPIDIR=/include)
ExternalProject_Add(libbpf_build
  URL ${LIBBPF_TARBALL}
  URL_HASH SHA256=${LIBBPF_ORIG_SHA256}
  DOWNLOAD_EXTRACT_TIMESTAMP TRUE
  PREFIX ${LIBBPF_DIR}/work
  CONFIGURE_COMMAND ""
  # Built and installed in one step, whose byproducts then name everything it leaves. From
  # clean: the step reruns when this file changes, and libbpf's Makefile does not track flags.
  BUILD_COMMAND ${LIBBPF_MAKE} clean
        COMMAND ${LIBBPF_MAKE} -j${LIBBPF_JOBS} install install_uapi_headers
  INSTALL_COMMAND ""
  BUILD_BYPRODUCTS ${LIBBPF_STATIC} ${LIBBPF_HEADERS}
  LOG_BUILD ON LOG_OUTPUT_ON_FAILURE ON)

ExternalProject_Add_StepDependencies(libbpf_build build ${CMAKE_CURRENT_LIST_FILE})

add_library(libbpf STATIC IMPORTED)
set_target_properties(libbpf PROPERTIES
  IMPORTED_LOCATION ${LIBBPF_STATIC}
  INTERFACE_INCLUDE_DIRECTORIES ${LIBBPF_INCLUDE_DIR}
  INTERFACE_LINK_LIBRARIES "${LIBELF};${LIBZ}")
add_dependencies(libbpf libbpf_build)
# What a custom command that includes libbpf's headers (the BPF object) depends on.
set(LIBBPF_HEADERS_READY ${LIBBPF_INCLUDE_DIR}/bpf/bpf_helpers.h)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
  ${CMAKE_CURRENT_SOURCE_DIR}/native/libbpf.pin ${CMAKE_CURRENT_SOURCE_DIR}/scripts/fetch-libbpf.sh)
