# The shader build: shaders/*.comp -> SPIR-V (one custom command per variant, with a DEPFILE so
# edits to included .glsl files rebuild) -> one generated C file that embeds every variant, as
# the static library vktrain_shaders. No shader file is read at run time.
#
#   VKT_GLSLANG         glslang binary; empty (default) = auto: the glslang 15 that
#                       tools/build-glslang.sh installs, if present, else the system's
#                       glslang/glslangValidator. Re-resolved at every configure while empty.
#   VKT_SHADER_COOPMAT  (result) ON when VKT_GLSLANG compiles GL_KHR_cooperative_matrix;
#                       variants that REQUIRE coopmat are skipped otherwise.
#   VKT_SHADER_COOPMAT2 (result) ON when it also compiles GL_NV_cooperative_matrix2 (tensor
#                       layouts); variants that REQUIRE coopmat2 are skipped otherwise.
#   VKT_HAVE_SHADERS    (result) ON when the vktrain_shaders target exists.

set(VKT_GLSLANG "" CACHE FILEPATH
    "glslang binary for the shaders (empty: ~/.cache/vktrain-tools/glslang-15 if built, else the system's)")

set(_vkt_tools_dir "$ENV{VKT_TOOLS_DIR}")
if(NOT _vkt_tools_dir)
  set(_vkt_tools_dir "$ENV{HOME}/.cache/vktrain-tools")
endif()
if(VKT_GLSLANG)
  set(VKT_GLSLANG_EXE "${VKT_GLSLANG}")
elseif(EXISTS "${_vkt_tools_dir}/glslang-15/bin/glslang")
  set(VKT_GLSLANG_EXE "${_vkt_tools_dir}/glslang-15/bin/glslang")
elseif(GLSLANG_EXECUTABLE AND EXISTS "${GLSLANG_EXECUTABLE}")
  set(VKT_GLSLANG_EXE "${GLSLANG_EXECUTABLE}")
else()
  set(VKT_GLSLANG_EXE "")
endif()

# Every variant targets Vulkan 1.2 (SPIR-V 1.5). That is also the lowest for the coopmat
# variants without extra device extensions: glslang emits them with the Vulkan memory model
# (capability VulkanMemoryModel), core in SPIR-V 1.5; under vulkan1.1 they would need
# SPV_KHR_vulkan_memory_model, and subgroup builtins rule out vulkan1.0. GL_NV_cooperative_matrix2
# needs SPIR-V 1.6: its variant says TARGET vulkan1.3 (and runs only on 1.3 devices).
set(VKT_SHADER_TARGET_ENV vulkan1.2)

set(VKT_GLSLANG_VERSION "")
set(VKT_SHADER_COOPMAT OFF)
set(VKT_SHADER_COOPMAT2 OFF)
if(VKT_GLSLANG_EXE)
  if(NOT EXISTS "${VKT_GLSLANG_EXE}")
    message(FATAL_ERROR "VKT_GLSLANG=${VKT_GLSLANG_EXE} does not exist. "
            "HINT: run tools/build-glslang.sh, or configure with -DVKT_GLSLANG= (empty) for the system glslang")
  endif()
  execute_process(COMMAND "${VKT_GLSLANG_EXE}" --version OUTPUT_VARIABLE _out ERROR_QUIET
                  RESULT_VARIABLE _rc)
  # "Glslang Version: 11:15.2.0": the part after the colon is glslang's release.
  if(_out MATCHES "Glslang Version: [0-9]+:([0-9]+\\.[0-9]+\\.[0-9]+)")
    set(VKT_GLSLANG_VERSION "${CMAKE_MATCH_1}")
  endif()
  # Cooperative matrices: ask the compiler itself rather than trust a version number.
  set(_probe_dir "${CMAKE_BINARY_DIR}/CMakeFiles/vkt_coopmat_probe")
  file(MAKE_DIRECTORY "${_probe_dir}")
  file(WRITE "${_probe_dir}/probe.comp" [=[
#version 450
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
layout(local_size_x = 32) in;
layout(binding = 0) buffer Buf { float16_t x[]; float y[]; };
void main() {
    coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseA> a;
    coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseB> b;
    coopmat<float, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator> c =
        coopmat<float, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator>(0.0);
    coopMatLoad(a, x, 0, 16, gl_CooperativeMatrixLayoutRowMajor);
    coopMatLoad(b, x, 256, 16, gl_CooperativeMatrixLayoutRowMajor);
    c = coopMatMulAdd(a, b, c);
}
]=])
  execute_process(COMMAND "${VKT_GLSLANG_EXE}" -V --target-env ${VKT_SHADER_TARGET_ENV}
                          -o "${_probe_dir}/probe.spv" "${_probe_dir}/probe.comp"
                  RESULT_VARIABLE _rc OUTPUT_QUIET ERROR_QUIET)
  if(_rc EQUAL 0)
    set(VKT_SHADER_COOPMAT ON)
  endif()
  file(WRITE "${_probe_dir}/probe2.comp" [=[
#version 450
#extension GL_KHR_cooperative_matrix : require
#extension GL_NV_cooperative_matrix2 : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
layout(local_size_x = 128) in;
layout(binding = 0) buffer Buf { float y[]; };
void main() {
    tensorLayoutNV<2, gl_CooperativeMatrixClampModeConstantNV> t =
        createTensorLayoutNV(2, gl_CooperativeMatrixClampModeConstantNV);
    t = setTensorLayoutDimensionNV(t, 100, 100);
    coopmat<float, gl_ScopeWorkgroup, 32, 32, gl_MatrixUseAccumulator> c;
    coopMatLoadTensorNV(c, y, 0, sliceTensorLayoutNV(t, 0, 32, 0, 32));
    coopMatStoreTensorNV(c, y, 0, sliceTensorLayoutNV(t, 32, 32, 0, 32));
}
]=])
  execute_process(COMMAND "${VKT_GLSLANG_EXE}" -V --target-env vulkan1.3
                          -o "${_probe_dir}/probe2.spv" "${_probe_dir}/probe2.comp"
                  RESULT_VARIABLE _rc OUTPUT_QUIET ERROR_QUIET)
  if(_rc EQUAL 0)
    set(VKT_SHADER_COOPMAT2 ON)
  endif()
endif()
set(VKT_SHADER_COOPMAT ${VKT_SHADER_COOPMAT} CACHE INTERNAL "glslang compiles GL_KHR_cooperative_matrix")
set(VKT_SHADER_COOPMAT2 ${VKT_SHADER_COOPMAT2} CACHE INTERNAL "glslang compiles GL_NV_cooperative_matrix2")

set(VKT_HAVE_SHADERS OFF)
if(Vulkan_FOUND AND VKT_GLSLANG_EXE)
  set(VKT_HAVE_SHADERS ON)
  file(MAKE_DIRECTORY "${CMAKE_BINARY_DIR}/shaders")
endif()

# vkt_add_shader(NAME SOURCE [DEFINES D[=V] ...] [REQUIRES coopmat|coopmat2|fp16 ...]
#                [TARGET vulkan1.3])
# Compiles shaders/SOURCE.comp with the defines into ${CMAKE_BINARY_DIR}/shaders/NAME.spv and
# embeds it under NAME. REQUIRES coopmat skips the variant when glslang lacks
# GL_KHR_cooperative_matrix, REQUIRES coopmat2 when it lacks GL_NV_cooperative_matrix2; REQUIRES fp16 only documents a device feature (every glslang we
# support compiles it; the host checks shaderFloat16 + 16-bit storage before using it).
function(vkt_add_shader name source)
  cmake_parse_arguments(S "" "TARGET" "DEFINES;REQUIRES" ${ARGN})
  if(NOT S_TARGET)
    set(S_TARGET ${VKT_SHADER_TARGET_ENV})
  endif()
  foreach(r ${S_REQUIRES})
    if(NOT r MATCHES "^(coopmat|coopmat2|fp16)$")
      message(FATAL_ERROR "vkt_add_shader(${name}): unknown REQUIRES '${r}' (coopmat, coopmat2, fp16)")
    endif()
  endforeach()
  if(("coopmat" IN_LIST S_REQUIRES AND NOT VKT_SHADER_COOPMAT) OR
     ("coopmat2" IN_LIST S_REQUIRES AND NOT VKT_SHADER_COOPMAT2))
    set_property(GLOBAL APPEND PROPERTY VKT_SHADERS_SKIPPED ${name})
    return()
  endif()
  set(in "${CMAKE_SOURCE_DIR}/shaders/${source}.comp")
  set(out "${CMAKE_BINARY_DIR}/shaders/${name}.spv")
  set(defs "")
  foreach(d ${S_DEFINES})
    list(APPEND defs "-D${d}")
  endforeach()
  string(REPLACE ";" " " defs_text "${defs}")
  if(defs_text)
    string(APPEND defs_text " ")
  endif()
  add_custom_command(
    OUTPUT "${out}"
    COMMAND "${VKT_GLSLANG_EXE}" --quiet -V --target-env ${S_TARGET} ${defs}
            -I${CMAKE_SOURCE_DIR}/shaders --depfile "${out}.d" -o "${out}" "${in}"
    DEPENDS "${in}" "${VKT_GLSLANG_EXE}"
    DEPFILE "${out}.d"
    COMMENT "glslang shaders/${source}.comp ${defs_text}-> shaders/${name}.spv"
    VERBATIM)
  set_property(GLOBAL APPEND PROPERTY VKT_SHADER_NAMES ${name})
  set_property(GLOBAL APPEND PROPERTY VKT_SHADER_SPVS "${out}")
endfunction()

# After every vkt_add_shader: the generated C file and the library around it.
function(vkt_shaders_finalize)
  get_property(names GLOBAL PROPERTY VKT_SHADER_NAMES)
  get_property(spvs GLOBAL PROPERTY VKT_SHADER_SPVS)
  get_property(skipped GLOBAL PROPERTY VKT_SHADERS_SKIPPED)
  if(skipped)
    message(STATUS "vktrain: shader variants skipped (no cooperative-matrix glslang): ${skipped}")
  endif()
  set(out "${CMAKE_BINARY_DIR}/shaders/vkt_shaders.c")
  # Lists travel to the script joined with '|' (a ';' would split the -D argument).
  string(REPLACE ";" "|" names_arg "${names}")
  string(REPLACE ";" "|" spvs_arg "${spvs}")
  add_custom_command(
    OUTPUT "${out}"
    COMMAND ${CMAKE_COMMAND} "-DNAMES=${names_arg}" "-DSPVS=${spvs_arg}" "-DOUT=${out}"
            -P "${CMAKE_SOURCE_DIR}/cmake/EmbedSpirv.cmake"
    DEPENDS ${spvs} "${CMAKE_SOURCE_DIR}/cmake/EmbedSpirv.cmake"
    COMMENT "Embedding SPIR-V (${names}) into shaders/vkt_shaders.c"
    VERBATIM)
  add_library(vktrain_shaders STATIC "${out}")
  target_include_directories(vktrain_shaders PUBLIC "${CMAKE_SOURCE_DIR}/src")
endfunction()
