# Build-side differences between the LibTorch lines yolo2 builds against (Debian 12's 1.13.1 in
# /usr, LibTorch 2.x from PyPI's torch wheel, Debian 13's libtorch-dev / libtorch-cuda-dev 2.6,
# pytorch.org's archive). The C++ side of the same differences lives in src/compat/.
#
# Sets: YOLO2_TORCH_VERSION, YOLO2_TORCH_CUDA (ON when LibTorch was built with CUDA),
#       YOLO2_TORCH_PREFIX (LibTorch's install prefix), YOLO2_PREFER_SYSTEM_INCLUDE (a folder to put
#       before LibTorch's headers, see below).

set(YOLO2_TORCH_VERSION "${Torch_VERSION}")
set(YOLO2_TORCH_PREFIX "${TORCH_INSTALL_PREFIX}")
if(TARGET torch_cuda)
  set(YOLO2_TORCH_CUDA ON)
else()
  set(YOLO2_TORCH_CUDA OFF)
endif()

# LibTorch archives and wheels ship third-party headers in the folder their target adds to the
# include path (fmt 11, oneDNN 3 among them), ahead of /usr/include. yolo2 links Debian's spdlog
# (built against Debian's fmt) and Debian's oneDNN library, so their own headers must win. A folder
# of links to those headers, given with -I, is searched before every -isystem folder (LibTorch's
# come through -isystem); /usr/include itself cannot be named with -I (GCC ignores system folders).
set(YOLO2_PREFER_SYSTEM_INCLUDE "${CMAKE_BINARY_DIR}/prefer-system-include")
file(REMOVE_RECURSE "${YOLO2_PREFER_SYSTEM_INCLUDE}")
file(MAKE_DIRECTORY "${YOLO2_PREFER_SYSTEM_INCLUDE}")
function(yolo2_prefer_system_header name system_dir)
  foreach(torch_dir IN LISTS TORCH_INCLUDE_DIRS)
    if(EXISTS "${torch_dir}/${name}" AND EXISTS "${system_dir}/${name}"
       AND NOT torch_dir STREQUAL system_dir)
      file(CREATE_LINK "${system_dir}/${name}" "${YOLO2_PREFER_SYSTEM_INCLUDE}/${name}" SYMBOLIC)
      message(STATUS "LibTorch bundles ${name}/: using ${system_dir}/${name} instead")
      return()
    endif()
  endforeach()
endfunction()
get_target_property(_yolo2_fmt_include fmt::fmt INTERFACE_INCLUDE_DIRECTORIES)
list(GET _yolo2_fmt_include 0 _yolo2_fmt_include)
yolo2_prefer_system_header(fmt "${_yolo2_fmt_include}")
if(YOLO2_DNNL_INCLUDE)
  yolo2_prefer_system_header(oneapi "${YOLO2_DNNL_INCLUDE}")
endif()

# c10d's NCCL process group (compiled in when LibTorch defines USE_C10D_NCCL, i.e. every CUDA
# build from PyPI or pytorch.org) includes nccl.h: the copy beside the wheel's libnccl first, then
# the CUDA toolkit's.
if(YOLO2_TORCH_CUDA)
  find_path(YOLO2_NCCL_INCLUDE nccl.h
            PATHS "${YOLO2_TORCH_PREFIX}/../nvidia/nccl/include" ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include
            NO_DEFAULT_PATH)
  if(NOT YOLO2_NCCL_INCLUDE)
    find_path(YOLO2_NCCL_INCLUDE nccl.h)
  endif()
  if(NOT YOLO2_NCCL_INCLUDE)
    message(FATAL_ERROR "LibTorch ${YOLO2_TORCH_VERSION} was built with CUDA and NCCL, but nccl.h was not found "
                        "(install NCCL's headers, e.g. Debian's libnccl-dev, or set YOLO2_NCCL_INCLUDE)")
  endif()
endif()

# TorchConfig.cmake finds c10 with find_library(... PATHS <prefix>/lib), which searches the system
# folders first: with Debian's libtorch-dev installed beside a wheel, TORCH_LIBRARIES names Debian's
# libc10 (1.13) as well as the wheel's. An executable whose own code uses no c10 symbol then records
# Debian's under the linker's --as-needed and aborts at start (both register the same dispatch keys;
# the fuzz replay did). The prefix's own libc10, already in the list through the c10 target, stays.
if(c10_LIBRARY AND NOT c10_LIBRARY MATCHES "^${YOLO2_TORCH_PREFIX}/" AND EXISTS "${YOLO2_TORCH_PREFIX}/lib/libc10.so")
  list(REMOVE_ITEM TORCH_LIBRARIES "${c10_LIBRARY}")
  message(STATUS "LibTorch: dropped ${c10_LIBRARY} (another LibTorch's c10) from its libraries")
endif()

message(STATUS "LibTorch ${YOLO2_TORCH_VERSION} at ${YOLO2_TORCH_PREFIX} (CUDA: ${YOLO2_TORCH_CUDA})")

# LibTorch 2.x wheels (manylinux, built with a newer GCC) export ~180 symbols of that GCC's
# libstdc++ from libtorch.so (std::filesystem::remove_all, stringbuf::str() among them). The
# executables list libtorch.so before libstdc++.so in their search order, so every library of the
# process (Debian's yaml-cpp, spdlog, ... included) would call LibTorch's copies, and some of those
# jump to address 0. Naming libstdc++ first on the link line puts the system's first; with Debian's
# LibTorch it changes nothing (one libstdc++ either way).
add_library(yolo2_libstdcxx_first INTERFACE)
target_link_options(yolo2_libstdcxx_first INTERFACE "LINKER:--push-state,--no-as-needed" "-lstdc++" "LINKER:--pop-state")
