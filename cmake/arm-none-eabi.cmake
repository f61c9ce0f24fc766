# CMake toolchain file: Arm's bare-metal GCC (Debian gcc-arm-none-eabi + libnewlib-arm-none-eabi), Cortex-M4 with
# FPU by default.
#
#   cmake -G Ninja -DCMAKE_TOOLCHAIN_FILE=<nnscons>/cmake/arm-none-eabi.cmake [-DNNSCONS_CPU_FLAGS="..."] ..
#
# NNSCONS_CPU_FLAGS selects the core; the ones of nnscons' targets (targets/<t>/target.toml, cflags):
#   m0  -mcpu=cortex-m0 -mthumb                     m33 -mcpu=cortex-m33 -mthumb -mfloat-abi=hard -mfpu=fpv5-sp-d16
#   m3  -mcpu=cortex-m3 -mthumb                     m55 -mcpu=cortex-m55 -mthumb -mfloat-abi=hard
#   m4  -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 (default)
#   m7  -mcpu=cortex-m7 -mthumb -mfloat-abi=hard -mfpu=fpv5-d16
# The generated code and the kernels pick their DSP / Helium code paths from the -mcpu the compiler gets.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)

set(NNSCONS_TOOLCHAIN_PREFIX "arm-none-eabi-" CACHE STRING "prefix of the cross tools")
set(NNSCONS_CPU_FLAGS "-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16" CACHE STRING
    "CPU flags for compiling and linking")
# try_compile projects see only the variables listed here
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES NNSCONS_TOOLCHAIN_PREFIX NNSCONS_CPU_FLAGS)

set(CMAKE_C_COMPILER "${NNSCONS_TOOLCHAIN_PREFIX}gcc")
set(CMAKE_CXX_COMPILER "${NNSCONS_TOOLCHAIN_PREFIX}g++")
set(CMAKE_ASM_COMPILER "${NNSCONS_TOOLCHAIN_PREFIX}gcc")
# No board support yet when CMake checks the compiler: test it by building a static library, not an executable
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

set(CMAKE_C_FLAGS_INIT "${NNSCONS_CPU_FLAGS} -ffunction-sections -fdata-sections")
set(CMAKE_CXX_FLAGS_INIT "${NNSCONS_CPU_FLAGS} -ffunction-sections -fdata-sections")
set(CMAKE_ASM_FLAGS_INIT "${NNSCONS_CPU_FLAGS}")
set(CMAKE_EXE_LINKER_FLAGS_INIT "${NNSCONS_CPU_FLAGS} -Wl,--gc-sections")

set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
