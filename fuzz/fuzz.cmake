# The libFuzzer executables fuzz_<target> (one per fuzz/fuzz_<target>.c), included by
# CMakeLists.txt when VKT_FUZZ=ON (clang; ASan + UBSan already on for the whole build).
# vktrain_core gets libFuzzer's coverage instrumentation; the replay drivers of
# tests/tests.cmake (replay_<target>) are built as in every build.
target_compile_options(vktrain_core PRIVATE -fsanitize=fuzzer-no-link)
file(GLOB VKT_FUZZ_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/fuzz/fuzz_*.c)
set(VKT_FUZZ_TARGETS "")
foreach(src ${VKT_FUZZ_SOURCES})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  target_link_libraries(${name} PRIVATE vktrain_core)
  target_include_directories(${name} PRIVATE src fuzz)
  list(APPEND VKT_FUZZ_TARGETS ${name})
endforeach()
# `cmake --build build-fuzz --target fuzz` builds just these (tools/fuzz.sh does).
add_custom_target(fuzz DEPENDS ${VKT_FUZZ_TARGETS})
