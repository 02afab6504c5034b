// Shared by every compute shader: extensions, the binding and push-constant conventions, and
// small helpers. Each .comp starts with `#version 450`, enables GL_GOOGLE_include_directive and
// includes this file; variants are chosen with -D defines (see cmake/Shaders.cmake), never by
// copying a shader.
//
// Conventions the host code (src/backend/vulkan/) relies on:
//  - descriptor set 0 only; storage buffers at bindings 0, 1, 2, ... in the order of the op's
//    arguments in include/vktrain/backend.h: outputs first, then inputs, then weights/bias.
//    An optional buffer that is absent (e.g. the bias) must still be bound (bind any buffer,
//    e.g. the output) and is then flagged off in the push constants.
//  - buffers are unsized arrays of their element type; tensors are addressed by ELEMENT
//    offsets passed in push constants (a vkt_ptr's byte offset / element size), so one
//    descriptor can cover a whole contiguous parameter buffer.
//  - push constants: one block per shader, named `pc`, scalars only (uint/int/float, 4 bytes
//    each, no vec3 padding surprises), at most 128 bytes (the Vulkan minimum limit).
//  - tile and workgroup sizes are specialization constants with working defaults, so the host
//    may tune them per device without recompiling; the workgroup size uses local_size_*_id
//    AND a literal local_size_* default (without one the default workgroup size is 1).

#extension GL_EXT_control_flow_attributes : enable

#ifdef USE_FP16
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_shader_16bit_storage : require
#endif

#ifdef USE_COOPMAT
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_shader_16bit_storage : require
#endif

// Storage type of matrix operands: float16_t under USE_FP16, float otherwise. Arithmetic is
// always fp32 (fp16 operands, fp32 accumulation: see DESIGN.md, Numbers and precision).
#ifdef USE_FP16
#define operand_t float16_t
#else
#define operand_t float
#endif

uint ceil_div(uint a, uint b) { return (a + b - 1u) / b; }

// Flag bits shared by ops that take optional inputs or transposes (pc.flags).
#define VKT_FLAG_TRANS_A 1u
#define VKT_FLAG_TRANS_B 2u
#define VKT_FLAG_BIAS 4u
