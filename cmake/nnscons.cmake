# nnscons.cmake: trained models (.tflite, .onnx) as static library targets of a CMake build.
#
#   include(<nnscons>/cmake/nnscons.cmake)          # a checkout, or `nnscons path cmake` of an installed package
#   nnscons_add_cmsisnn(cmsisnn)                    # the kernel library (the portable one unless PATH <checkout>)
#   nnscons_add_model(kws MODEL models/kws/model.tflite CALIB models/kws/calib.npz QUANT int8 KERNELS cmsisnn)
#   target_link_libraries(app PRIVATE kws)          # #include "kws.h"; kws_invoke(...)
#                                                   # (a model.toml with [frontend]: kws_frontend.h and CMSIS-DSP too)
#   enable_testing()
#   nnscons_validate(kws_validate MODEL models/kws)   # a CTest test: `nnscons validate`, passes when the model does
#
# nnscons_add_model runs `nnscons generate` through add_custom_command with a DEPFILE (CMake >= 3.20 for the
# Makefile generators), so the sources are regenerated when the model, the calibration set, the options (written by
# file(CONFIGURE), which touches the file only when its content changes) or the generator itself (its modules and
# templates, listed in the depfile) change. With Ninja the command rewrites only outputs whose bytes changed and
# the edge has restat, so an identical regeneration stops there; with the Makefile generators it rewrites them
# every time (make compares timestamps).
#
# Variables (cache): NNSCONS_PYTHON, the Python that runs nnscons (default: the installed package's own Python,
# else find_package(Python3)); NNSCONS_CMSIS_DIR, the default kernel library.
cmake_minimum_required(VERSION 3.20)
include_guard(GLOBAL)

get_filename_component(_nnscons_cmake_dir "${CMAKE_CURRENT_LIST_DIR}" REALPATH)
if(EXISTS "${_nnscons_cmake_dir}/../site_scons/nnscons/__init__.py")      # a checkout: cmake/ beside site_scons/
    get_filename_component(_nnscons_root "${_nnscons_cmake_dir}/.." REALPATH)
    set(_nnscons_pythonpath "${_nnscons_root}/site_scons")
    set(_nnscons_package "${_nnscons_root}/site_scons/nnscons")
    set(_nnscons_cmsis "${_nnscons_root}/cmsis")
    set(_nnscons_targets "${_nnscons_root}/targets")
else()                                                                      # installed: <site-packages>/nnscons/_cmake
    get_filename_component(_nnscons_package "${_nnscons_cmake_dir}/.." REALPATH)
    set(_nnscons_pythonpath "")
    set(_nnscons_cmsis "${_nnscons_package}/_cmsis")
    set(_nnscons_targets "${_nnscons_package}/_targets")
    get_filename_component(_nnscons_env_python "${_nnscons_package}/../../../../bin/python3" ABSOLUTE)
endif()

set(NNSCONS_CMSIS_DIR "${_nnscons_cmsis}" CACHE PATH "CMSIS-NN checkout (Include/, Source/) nnscons_add_cmsisnn uses")
set(NNSCONS_TARGETS_DIR "${_nnscons_targets}" CACHE PATH "nnscons target folders (startup code, linker scripts)")
set(NNSCONS_RUNTIME_DIR "${_nnscons_package}/runtime")

if(NOT NNSCONS_PYTHON)
    if(DEFINED _nnscons_env_python AND EXISTS "${_nnscons_env_python}")
        set(_nnscons_python "${_nnscons_env_python}")
    else()
        find_package(Python3 REQUIRED COMPONENTS Interpreter)
        set(_nnscons_python "${Python3_EXECUTABLE}")
    endif()
    set(NNSCONS_PYTHON "${_nnscons_python}" CACHE FILEPATH "Python that runs nnscons (with numpy, onnx, tflite, jinja2)")
endif()
if(_nnscons_pythonpath)
    set(NNSCONS_COMMAND "${CMAKE_COMMAND}" -E env "PYTHONPATH=${_nnscons_pythonpath}" "${NNSCONS_PYTHON}" -m nnscons)
else()
    set(NNSCONS_COMMAND "${NNSCONS_PYTHON}" -m nnscons)
endif()
execute_process(COMMAND ${NNSCONS_COMMAND} --version RESULT_VARIABLE _nnscons_rc OUTPUT_VARIABLE _nnscons_version
                ERROR_VARIABLE _nnscons_error OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT _nnscons_rc EQUAL 0)
    message(FATAL_ERROR "nnscons: ${NNSCONS_PYTHON} cannot run nnscons: ${_nnscons_error}"
                        "Set NNSCONS_PYTHON to a Python with nnscons and its dependencies installed.")
endif()
message(STATUS "${_nnscons_version} (${NNSCONS_PYTHON})")

# Runs `nnscons <ARGN>`, which prints CMake set() lines, and includes them in the caller's scope (a macro), kept
# as <file> in the binary folder; a failure stops the configuration with the command's message, named <caller>.
macro(_nnscons_include_description caller file)
    execute_process(COMMAND ${NNSCONS_COMMAND} ${ARGN} RESULT_VARIABLE _nnscons_rc
                    OUTPUT_VARIABLE _nnscons_description ERROR_VARIABLE _nnscons_error)
    if(NOT _nnscons_rc EQUAL 0)
        message(FATAL_ERROR "${caller}: ${_nnscons_error}")
    endif()
    file(WRITE "${CMAKE_CURRENT_BINARY_DIR}/${file}" "${_nnscons_description}")
    include("${CMAKE_CURRENT_BINARY_DIR}/${file}")
endmacro()

# The [PATH <folder>] argument of nnscons_add_cmsisnn and nnscons_add_cmsisdsp, checked (and that no argument was
# unknown): its absolute path (relative to the calling folder), else <default>, in <variable>.
function(_nnscons_path_argument variable caller default)
    cmake_parse_arguments(PARSE_ARGV 3 arg "" "PATH" "")
    if(arg_UNPARSED_ARGUMENTS)
        message(FATAL_ERROR "${caller}: unknown arguments ${arg_UNPARSED_ARGUMENTS}")
    endif()
    set(path "${default}")
    if(arg_PATH)
        get_filename_component(path "${arg_PATH}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    endif()
    set(${variable} "${path}" PARENT_SCOPE)
endfunction()

# nnscons_add_cmsisnn(<target> [PATH <CMSIS-NN checkout>])
# A static library of the kernels as `nnscons kernels` describes their build (the one description the SCons tool
# and the host builds use too): every integer source under Source/*/, Include/ as its public include folder.
# PATH defaults to NNSCONS_CMSIS_DIR (nnscons' portable library).
function(nnscons_add_cmsisnn target)
    _nnscons_path_argument(root "nnscons_add_cmsisnn(${target})" "${NNSCONS_CMSIS_DIR}" ${ARGN})
    _nnscons_include_description("nnscons_add_cmsisnn(${target})" "${target}-kernels.cmake"
                                 kernels --cmsis "${root}" --cmake)
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${root}/Source")
    add_library(${target} STATIC ${NNSCONS_KERNEL_SOURCES})
    target_include_directories(${target} PUBLIC ${NNSCONS_KERNEL_INCLUDE_DIRS})
endfunction()

# The MODEL argument of nnscons_add_model and nnscons_validate, checked (and that no argument was unknown): its
# absolute path (relative to the calling folder) in <variable>.
function(_nnscons_model_argument variable caller model unparsed)
    if(unparsed)
        message(FATAL_ERROR "${caller}: unknown arguments ${unparsed}")
    endif()
    if(NOT model)
        message(FATAL_ERROR "${caller}: MODEL <file> is required")
    endif()
    get_filename_component(path "${model}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    if(NOT EXISTS "${path}")
        message(FATAL_ERROR "${caller}: no such model file ${path}")
    endif()
    set(${variable} "${path}" PARENT_SCOPE)
endfunction()

# nnscons_add_cmsisdsp(<target> [PATH <CMSIS-DSP tree>]): CMSIS-DSP as a static library, for an audio front end
# (nnscons_add_model adds nnscons_cmsisdsp by itself for a model whose model.toml declares [frontend]). Its sources
# are the ones `nnscons fetch-dsp` unpacks (the cmsisdsp package's), compiled as that package compiles them.
function(nnscons_add_cmsisdsp target)
    _nnscons_path_argument(root "nnscons_add_cmsisdsp(${target})" "" ${ARGN})
    set(root_args "")
    if(root)
        set(root_args --root "${root}")
    endif()
    _nnscons_include_description("nnscons_add_cmsisdsp(${target})" "${target}-dsp.cmake" fetch-dsp --cmake
                                 ${root_args})
    add_library(${target} STATIC ${NNSCONS_DSP_SOURCES})
    target_include_directories(${target} PUBLIC ${NNSCONS_DSP_INCLUDE_DIRS})
    target_compile_definitions(${target} PUBLIC ${NNSCONS_DSP_DEFINITIONS})
    target_compile_options(${target} PRIVATE ${NNSCONS_DSP_OPTIONS})
    target_link_libraries(${target} PUBLIC m)      # expf, logf ...
endfunction()

# Whether the model.toml beside a model declares an audio front end (a [frontend] table): sets <out> ON or OFF.
function(_nnscons_has_frontend out model)
    get_filename_component(folder "${model}" DIRECTORY)
    set(found OFF)
    if(EXISTS "${folder}/model.toml")
        set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${folder}/model.toml")
        file(STRINGS "${folder}/model.toml" tables REGEX "^[ \t]*\\[frontend\\]")
        if(tables)
            set(found ON)
        endif()
    endif()
    set(${out} ${found} PARENT_SCOPE)
endfunction()

# nnscons_add_model(<target> MODEL <file> [NAME <C name>] [CALIB <file>] [QUANT <scheme>] [RANGE <method>]
#                   [API <api>] [OPTIONS <key>=<value> ...] [KERNELS <kernel library target>])
# A static library <target> of the model's generated C (<name>.h on its public include path; the C API is
# <name>_invoke() etc.). NAME defaults to <target>. Options not given come from a model.toml beside
# the model, else the defaults (`nnscons generate -h`). KERNELS is linked publicly; without it, a target
# nnscons_cmsisnn is made once with nnscons_add_cmsisnn(). When that model.toml declares a [frontend], the library
# also holds <name>_frontend.c and links nnscons_cmsisdsp (made once with nnscons_add_cmsisdsp()).
function(nnscons_add_model target)
    cmake_parse_arguments(PARSE_ARGV 1 arg "" "MODEL;NAME;CALIB;QUANT;RANGE;API;KERNELS" "OPTIONS")
    _nnscons_model_argument(model "nnscons_add_model(${target})" "${arg_MODEL}" "${arg_UNPARSED_ARGUMENTS}")
    set(name "${arg_NAME}")
    if(NOT name)
        set(name "${target}")
    endif()
    if(NOT name MATCHES "^[A-Za-z_][A-Za-z0-9_]*$")
        message(FATAL_ERROR "nnscons_add_model(${target}): the model's C name ${name} is not a C identifier: "
                            "give NAME <identifier>")
    endif()
    set(dir "${CMAKE_CURRENT_BINARY_DIR}/nnscons/${target}")

    # The options as a TOML file (the keys of model.toml): rewritten only when its content changes
    set(options "")
    foreach(pair "quant=${arg_QUANT}" "range=${arg_RANGE}" "api=${arg_API}" ${arg_OPTIONS})
        string(REGEX MATCH "^([A-Za-z_]+)=(.*)$" _ "${pair}")
        if(NOT CMAKE_MATCH_0)
            message(FATAL_ERROR "nnscons_add_model(${target}): OPTIONS takes key=value, not ${pair}")
        endif()
        if(NOT CMAKE_MATCH_2 STREQUAL "")
            string(APPEND options "${CMAKE_MATCH_1} = \"${CMAKE_MATCH_2}\"\n")
        endif()
    endforeach()
    file(CONFIGURE OUTPUT "${dir}/options.toml" CONTENT "${options}" @ONLY)

    set(outputs "${dir}/${name}.h" "${dir}/${name}_model.c" "${dir}/${name}_weights.c")
    _nnscons_has_frontend(frontend "${model}")
    if(frontend)    # the audio front end's C too, which calls CMSIS-DSP
        list(APPEND outputs "${dir}/${name}_frontend.h" "${dir}/${name}_frontend.c")
    endif()
    set(command ${NNSCONS_COMMAND} generate "${model}" --out "${dir}" --name "${name}" --options "${dir}/options.toml"
                --depfile "${dir}/${name}.d" --quiet)
    set(inputs "${model}" "${dir}/options.toml")
    if(arg_CALIB)
        get_filename_component(calib "${arg_CALIB}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
        list(APPEND command --calib "${calib}")
        list(APPEND inputs "${calib}")
    endif()
    if(CMAKE_GENERATOR MATCHES "Makefiles")
        list(APPEND command --always-write)   # make compares timestamps: unchanged outputs must be touched too
    endif()
    add_custom_command(OUTPUT ${outputs}
                       COMMAND ${command}
                       DEPENDS ${inputs}
                       DEPFILE "${dir}/${name}.d"
                       COMMENT "nnscons: generating ${name} from ${arg_MODEL}"
                       VERBATIM)
    add_library(${target} STATIC ${outputs})
    target_include_directories(${target} PUBLIC "${dir}")
    set(kernels "${arg_KERNELS}")
    if(NOT kernels)
        set(kernels nnscons_cmsisnn)
        if(NOT TARGET nnscons_cmsisnn)
            nnscons_add_cmsisnn(nnscons_cmsisnn)
        endif()
    endif()
    target_link_libraries(${target} PUBLIC ${kernels})
    if(frontend)
        if(NOT TARGET nnscons_cmsisdsp)
            nnscons_add_cmsisdsp(nnscons_cmsisdsp)
        endif()
        target_link_libraries(${target} PUBLIC nnscons_cmsisdsp)
    endif()
endfunction()

# nnscons_validate(<test> MODEL <folder or file> [NAME <C name>] [CALIB <file>] [TEST <file>] [QUANT <scheme>]
#                  [RANGE <method>] [API <api>] [OPTIONS <key>=<value> ...] [TARGET <targets>] [ARGS <arg> ...])
# A CTest test (call enable_testing() first) that runs `nnscons validate`: generates the model's C, builds the host
# test binary (and with TARGET m4 etc. the firmware, run in QEMU) and proves it: bit for bit against TFLite Micro
# for a .tflite carrying its own quantization, agreement and SNR thresholds against LiteRT / onnxruntime otherwise.
# The test passes when the model does. MODEL is a model folder (model.* with calib.npz, test.npz, model.toml) or a
# model file; ARGS go to the command as they are (e.g. --min-agreement 90). Work folder:
# <binary dir>/nnscons-validate/<test>, reused by the next run.
function(nnscons_validate test)
    cmake_parse_arguments(PARSE_ARGV 1 arg "" "MODEL;NAME;CALIB;TEST;QUANT;RANGE;API;TARGET" "OPTIONS;ARGS")
    _nnscons_model_argument(model "nnscons_validate(${test})" "${arg_MODEL}" "${arg_UNPARSED_ARGUMENTS}")
    set(command ${NNSCONS_COMMAND} validate "${model}" --out "${CMAKE_CURRENT_BINARY_DIR}/nnscons-validate/${test}")
    foreach(key NAME CALIB TEST QUANT RANGE API TARGET)
        if(arg_${key})
            string(TOLOWER "${key}" flag)
            set(value "${arg_${key}}")
            if(key STREQUAL "CALIB" OR key STREQUAL "TEST")
                get_filename_component(value "${value}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
            endif()
            list(APPEND command "--${flag}" "${value}")
        endif()
    endforeach()
    foreach(pair ${arg_OPTIONS})
        if(NOT pair MATCHES "^([A-Za-z_]+)=(.+)$")
            message(FATAL_ERROR "nnscons_validate(${test}): OPTIONS takes key=value, not ${pair}")
        endif()
        list(APPEND command "--${CMAKE_MATCH_1}" "${CMAKE_MATCH_2}")
    endforeach()
    add_test(NAME ${test} COMMAND ${command} ${arg_ARGS} WORKING_DIRECTORY "${CMAKE_CURRENT_BINARY_DIR}")
    set_tests_properties(${test} PROPERTIES LABELS nnscons)
endfunction()

# nnscons_link_board(<executable> [BOARD <name>])
# Link a Cortex-M executable with a board of nnscons' targets folder (default m4): its startup code and linker
# script, newlib-nano with float printf (-u _printf_float: newlib-nano leaves it out otherwise) and stdio: over
# semihosting for the MPS2/MPS3 targets (the way the nnscons firmware runs in QEMU), over the UART for a folder with a
# board.c (netduinoplus2, microbit: its clock and UART set-up). Compile for the same CPU (the toolchain file
# cmake/arm-none-eabi.cmake, NNSCONS_CPU_FLAGS).
function(nnscons_link_board executable)
    cmake_parse_arguments(PARSE_ARGV 1 arg "" "BOARD" "")
    set(board "${arg_BOARD}")
    if(NOT board)
        set(board m4)
    endif()
    set(board_dir "${NNSCONS_TARGETS_DIR}/${board}")
    if(NOT EXISTS "${board_dir}/firmware.ld")
        message(FATAL_ERROR "nnscons_link_board(${executable}): ${board_dir} has no firmware.ld")
    endif()
    # A board folder with its own startup.c uses it; the targets of nnscons share one (its runtime folder).
    set(startup "${board_dir}/startup.c")
    if(NOT EXISTS "${startup}")
        set(startup "${NNSCONS_RUNTIME_DIR}/nnscons_startup_cortex_m.c")
    endif()
    if(EXISTS "${board_dir}/board.c")
        set(io "${NNSCONS_RUNTIME_DIR}/nnscons_uart_stdio.c" "${board_dir}/board.c")
        set(specs --specs=nano.specs --specs=nosys.specs)
    else()
        set(io "${NNSCONS_RUNTIME_DIR}/nnscons_semihosting.c")
        set(specs --specs=nano.specs --specs=rdimon.specs)
    endif()
    target_sources(${executable} PRIVATE "${startup}" ${io})
    target_link_options(${executable} PRIVATE -nostartfiles ${specs} -Wl,-u,_printf_float
                        "-T${board_dir}/firmware.ld" "-L${NNSCONS_RUNTIME_DIR}")
    set_property(TARGET ${executable} APPEND PROPERTY LINK_DEPENDS "${board_dir}/firmware.ld")
endfunction()
