# ctest executables: one per concern, non-zero exit on failure, labelled so subsets run with
# `ctest -L cpu` etc. Fixtures are found through VKT_TEST_DATA; the sample corpus through
# VKT_SOURCE_DIR.
# Every test runs without the OpenCL GEMM tuning pass (a minute of kernel builds on a cold
# PoCL); test_opencl_devices asks for it explicitly (backend option gemm_tune = force).
# LeakSanitizer's suppressions (tests/lsan.supp) apply to sanitizer builds' runs, the CLI
# tests' too.
set(VKT_TEST_ENV "VKT_OPENCL_GEMM_TUNE=off;LSAN_OPTIONS=suppressions=${CMAKE_SOURCE_DIR}/tests/lsan.supp:print_suppressions=0")

function(vkt_add_test name)
  cmake_parse_arguments(T "" "" "LABELS" ${ARGN})
  add_executable(${name} tests/${name}.c)
  target_link_libraries(${name} PRIVATE vktrain_core)
  target_include_directories(${name} PRIVATE src tests)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" SKIP_RETURN_CODE 77
    ENVIRONMENT "VKT_TEST_DATA=${CMAKE_SOURCE_DIR}/tests/data;VKT_SOURCE_DIR=${CMAKE_SOURCE_DIR};VKT_BINARY=$<TARGET_FILE:vktrain>;${VKT_TEST_ENV}")
endfunction()

file(GLOB VKT_TEST_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/test_*.c)
foreach(src ${VKT_TEST_SOURCES})
  get_filename_component(name ${src} NAME_WE)
  if(name MATCHES "shaders|vulkan")
    # Vulkan tests link the embedded shaders; without them (no glslang or no Vulkan headers)
    # they are not built, and a stand-in reports SKIP, or FAIL when CI requires the backend.
    if(TARGET vktrain_shaders)
      vkt_add_test(${name} LABELS vulkan)
      target_link_libraries(${name} PRIVATE vktrain_shaders)
      # some include the backend's internal headers (src/backend/vulkan/), hence Vulkan's
      target_include_directories(${name} PRIVATE ${Vulkan_INCLUDE_DIRS})
    else()
      add_test(NAME ${name} COMMAND sh -c
        "echo '${name}: skipped: the shader library was not built (see the configure output)'; case \",$VKT_REQUIRE_BACKENDS,\" in *,vulkan,*) exit 1;; esac; exit 77")
      set_tests_properties(${name} PROPERTIES LABELS vulkan SKIP_RETURN_CODE 77)
    endif()
    continue()
  endif()
  set(labels cpu)
  if(name MATCHES "opencl")
    set(labels opencl) # needs an OpenCL driver; skips (77) without one
  endif()
  if(name MATCHES "train|resume")
    list(APPEND labels slow)
  endif()
  vkt_add_test(${name} LABELS ${labels})
endforeach()

# CLI-level checks: exit statuses and messages of the real binary.
# VKT_COOPMAT_BUILT tells it whether this build has the cooperative-matrix shader variants (a
# glslang without GL_KHR_cooperative_matrix builds none), so it expects the matching refusal.
if(VKT_SHADER_COOPMAT)
  set(VKT_COOPMAT_BUILT 1)
else()
  set(VKT_COOPMAT_BUILT 0)
endif()
add_test(NAME cli_errors COMMAND sh ${CMAKE_SOURCE_DIR}/tests/cli_errors.sh $<TARGET_FILE:vktrain> ${CMAKE_SOURCE_DIR})
set_tests_properties(cli_errors PROPERTIES LABELS "cpu" ENVIRONMENT "VKT_COOPMAT_BUILT=${VKT_COOPMAT_BUILT};${VKT_TEST_ENV}")

# The data commands end to end (prepare, train on it, sample, eval, export) and bad data input.
add_test(NAME cli_data COMMAND sh ${CMAKE_SOURCE_DIR}/tests/cli_data.sh $<TARGET_FILE:vktrain> ${CMAKE_SOURCE_DIR})
set_tests_properties(cli_data PROPERTIES LABELS "cpu" ENVIRONMENT "${VKT_TEST_ENV}")

# Hostile input end to end: FIFOs and devices for every input of every command, crafted
# checkpoints and llm.c files (written by test_checkpoint_hostile --write), non-finite weights,
# an empty prompt, eval's error messages, a signal before training.
add_test(NAME cli_hostile COMMAND sh ${CMAKE_SOURCE_DIR}/tests/cli_hostile.sh $<TARGET_FILE:vktrain> ${CMAKE_SOURCE_DIR} $<TARGET_FILE:test_checkpoint_hostile>)
set_tests_properties(cli_hostile PROPERTIES LABELS "cpu" ENVIRONMENT "${VKT_TEST_ENV}")

# The cross-backend op comparison, run once more with the cpu backend as the device under test
# so that the harness itself is exercised on every machine.
add_test(NAME test_backend_ops_harness COMMAND test_backend_ops)
set_tests_properties(test_backend_ops_harness PROPERTIES LABELS "cpu"
  ENVIRONMENT "VKT_TEST_DEVICES=cpu:0;${VKT_TEST_ENV}")

# OpenCL's precision = fp16 path only rounds operands (integer bit work, no fp16 arithmetic),
# so VKT_OPENCL_FORCE_FP16=1 lets it run on a device without cl_khr_fp16 (PoCL): the op
# comparison and the training run then cover it too.
add_test(NAME test_opencl_fp16_ops COMMAND test_backend_ops)
set_tests_properties(test_opencl_fp16_ops PROPERTIES LABELS "opencl" SKIP_RETURN_CODE 77
  ENVIRONMENT "VKT_TEST_DEVICES=opencl:0;VKT_OPENCL_FORCE_FP16=1;${VKT_TEST_ENV}")
set_property(TEST test_opencl_train APPEND PROPERTY ENVIRONMENT "VKT_OPENCL_FORCE_FP16=1")

# The Vulkan paths a device with 16-bit storage, host-cached memory and push descriptors does
# not take: the op comparison once more without them (fp16 matmul operands read as 32-bit
# words; downloads through the staging ring; descriptor sets from pools), and the validation
# run with descriptor sets.
if(TARGET vktrain_shaders)
  add_test(NAME test_vulkan_ops_fallbacks COMMAND test_backend_ops)
  set_tests_properties(test_vulkan_ops_fallbacks PROPERTIES LABELS "vulkan" SKIP_RETURN_CODE 77
    ENVIRONMENT "VKT_TEST_DEVICES=vulkan:0;VKT_VULKAN_DISABLE_STORAGE16=1;VKT_VULKAN_NO_READBACK=1;VKT_VULKAN_NO_PUSH_DESCRIPTORS=1;${VKT_TEST_ENV}")
  # precision = fp16's copies on vulkan:0, where the producers write them in their own kernels
  add_test(NAME test_vulkan_fp16_copies COMMAND test_fp16_copies)
  set_tests_properties(test_vulkan_fp16_copies PROPERTIES LABELS "vulkan" SKIP_RETURN_CODE 77
    ENVIRONMENT "VKT_TEST_DEVICE=vulkan:0;${VKT_TEST_ENV}")
  add_test(NAME test_vulkan_validation_pools COMMAND test_vulkan_validation)
  set_tests_properties(test_vulkan_validation_pools PROPERTIES LABELS "vulkan" SKIP_RETURN_CODE 77
    ENVIRONMENT "VKT_VULKAN_NO_PUSH_DESCRIPTORS=1;VKT_SOURCE_DIR=${CMAKE_SOURCE_DIR};${VKT_TEST_ENV}")
endif()

# The run directory: a rerun keeps the earlier run, the lock refuses a second run on one
# out_dir (none stale after kill -9), prepare --force never removes a foreign directory.
add_test(NAME cli_mpi COMMAND sh ${CMAKE_SOURCE_DIR}/tests/cli_mpi.sh $<TARGET_FILE:vktrain> ${CMAKE_SOURCE_DIR})
set_tests_properties(cli_mpi PROPERTIES LABELS "mpi" SKIP_RETURN_CODE 77
                     ENVIRONMENT "${VKT_TEST_ENV}")
add_test(NAME cli_mpi_hosts COMMAND sh ${CMAKE_SOURCE_DIR}/tests/cli_mpi_hosts.sh $<TARGET_FILE:vktrain> ${CMAKE_SOURCE_DIR})
set_tests_properties(cli_mpi_hosts PROPERTIES LABELS "mpi" SKIP_RETURN_CODE 77
                     ENVIRONMENT "${VKT_TEST_ENV}")
add_test(NAME cli_rundir COMMAND sh ${CMAKE_SOURCE_DIR}/tests/cli_rundir.sh $<TARGET_FILE:vktrain> ${CMAKE_SOURCE_DIR})
set_tests_properties(cli_rundir PROPERTIES LABELS "cpu" ENVIRONMENT "${VKT_TEST_ENV}")

# --dry-run: configs/gpt2-124m.ini's memory table and fit on every present device, per-tensor
# activation buffers under a lowered allocation limit, a buffer over it refused by name.
add_test(NAME cli_memory COMMAND sh ${CMAKE_SOURCE_DIR}/tests/cli_memory.sh $<TARGET_FILE:vktrain> ${CMAKE_SOURCE_DIR})
set_tests_properties(cli_memory PROPERTIES LABELS "cpu" ENVIRONMENT "${VKT_TEST_ENV}")

# Fuzz inputs replayed in every build (fuzz/README.md): each fuzz/fuzz_<t>.c target's
# LLVMFuzzerTestOneInput in a plain driver (fuzz/replay_main.c) over fuzz/corpus/<t>/ and
# fuzz/crashes/<t>/ (inputs that once crashed; its pending/ subdirectory is not replayed).
file(GLOB VKT_FUZZ_REPLAY_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/fuzz/fuzz_*.c)
foreach(src ${VKT_FUZZ_REPLAY_SOURCES})
  get_filename_component(name ${src} NAME_WE)
  string(REGEX REPLACE "^fuzz_" "" t ${name})
  add_executable(replay_${t} ${src} ${CMAKE_SOURCE_DIR}/fuzz/replay_main.c)
  target_link_libraries(replay_${t} PRIVATE vktrain_core)
  target_include_directories(replay_${t} PRIVATE src fuzz)
  set(inputs ${CMAKE_SOURCE_DIR}/fuzz/corpus/${t})
  if(EXISTS ${CMAKE_SOURCE_DIR}/fuzz/crashes/${t})
    list(APPEND inputs ${CMAKE_SOURCE_DIR}/fuzz/crashes/${t})
  endif()
  add_test(NAME fuzz_replay_${t} COMMAND replay_${t} ${inputs})
  set_tests_properties(fuzz_replay_${t} PROPERTIES LABELS "cpu;fuzz" ENVIRONMENT "${VKT_TEST_ENV}")
endforeach()
