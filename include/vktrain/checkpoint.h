/* Checkpoints: a versioned file of sections, each with a CRC32, holding everything a run
 * needs to continue exactly (shape, step, loader position, parameters, AdamW moments, config).
 *
 *   "VKTCKPT\0"  u32 version (1)  u32 section count
 *   per section: u32 tag  u32 crc32(payload)  u64 payload bytes  payload
 *   tags: SHPE (6 x int32: maxT V Vp L NH C), STEP (int32 step, u64 loader seed, u64 loader
 *         batches), CONF (effective INI text), PARM (fp32 params), ADAM (fp32 m then v),
 *         TOKN (the tokenizer, vkt_tokenizer_serialize; absent when unknown),
 *         SCAL (fp32 loss scale, int32 clean steps, int32 skipped steps; absent in files of
 *         older versions: scale 1, no skips),
 *         SPLT (int32 ranks K, then K x int32: each rank's sequences of the global batch under
 *         [parallel] balance = auto; absent otherwise)
 * Readers skip sections they do not know, and refuse before allocating anything: a known
 * section twice, a wrong-size SHPE/STEP/SCAL, a shape vkt_gpt2_shape_check refuses, PARM/ADAM
 * sizes other than the shape's, step outside [0, INT32_MAX - 1], loader batches outside
 * [step, 2^48], a loss scale not finite and > 0, negative counts, skipped > step, a TOKN
 * vocab above the model's, bytes after the last section; then weights that are not finite.
 * Written to a temporary name (path.tmp.<pid>) and renamed, so a crash never leaves a half
 * file behind. */
#ifndef VKTRAIN_CHECKPOINT_H
#define VKTRAIN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "vktrain/config.h"
#include "vktrain/data.h"
#include "vktrain/model.h"
#include "vktrain/tokenizer.h"

#define VKT_CHECKPOINT_VERSION 1
#define VKT_CHECKPOINT_FILE "checkpoint.bin"

/* The dynamic loss scale of precision = fp16 (train.c), kept across a resume. */
typedef struct vkt_loss_scale {
    float scale;     /* the loss (so every gradient) is multiplied by it; 1 under fp32 */
    int clean_steps; /* steps since the last overflow or growth */
    int skipped;     /* updates skipped so far (fp16 overflow, outlier guard): AdamW's t counts
                      * updates only */
} vkt_loss_scale;

/* How an MPI run's global batch is shared: counts[r] sequences for rank r (balance = auto). */
#define VKT_MAX_SPLIT_RANKS 256
typedef struct vkt_batch_split {
    int ranks; /* 0: none (even shares) */
    int counts[VKT_MAX_SPLIT_RANKS];
} vkt_batch_split;

typedef struct vkt_checkpoint {
    vkt_gpt2_shape shape;
    int step;
    vkt_loader_state loader;
    char *config_text;       /* NUL-terminated */
    float *params;           /* num_params floats */
    float *adam;             /* 2 * num_params floats (m then v), or NULL when absent */
    vkt_tokenizer *tokenizer; /* NULL when absent */
    vkt_loss_scale loss_scale; /* {1, 0, 0} when absent */
    vkt_batch_split split;     /* ranks 0 when absent */
    size_t num_params;
} vkt_checkpoint;

/* Writes path atomically (path.tmp.<pid>, then rename). 0, or 1 with err naming the file. */
int vkt_checkpoint_save(const char *path, vkt_model *m, const vkt_config *cfg, int step,
                        const vkt_loader_state *loader, const vkt_loss_scale *ls,
                        const vkt_tokenizer *tok, const vkt_batch_split *split, char *err,
                        size_t errlen);
/* Reads and verifies (magic, version, every CRC, every field as above). 0, or 2 with err
 * naming the file, the section and the field (1: out of memory). */
int vkt_checkpoint_read(const char *path, vkt_checkpoint *ck, char *err, size_t errlen);
/* The same on a file already in memory (name stands for it in messages): what a fuzzer calls.
 * On failure ck is freed and zeroed. */
int vkt_checkpoint_parse(const unsigned char *buf, size_t len, const char *name,
                         vkt_checkpoint *ck, char *err, size_t errlen);
/* 0 when every value of x (laid out as s's parameters) is finite; else 2 with err naming the
 * file, the first tensor and element, and what x is ("the parameters"). */
int vkt_weights_check_finite(const char *name, const char *what, const vkt_gpt2_shape *s,
                             const float *x, char *err, size_t errlen);
void vkt_checkpoint_free(vkt_checkpoint *ck);

/* ---- llm.c model files ----------------------------------------------------------------------
 * 256 x int32 header {magic 20240326, version, maxT, V, L, NH, C, Vp}, then the parameters in
 * the order of vkt_gpt2_param_layout: version 3 = fp32, version 5 = bf16 (read only). */
#define VKT_LLMC_VERSION_FP32 3
#define VKT_LLMC_VERSION_BF16 5

/* Reads an llm.c model file into ck (shape and params; step 0, no adam, config or
 * tokenizer). The header is checked as a checkpoint's SHPE (its padded vocab may be any value
 * >= vocab, as llm.c pads to 128), the size must be exactly what it implies, and the weights
 * must be finite. 0, or 2 with err naming the file and the problem (1: out of memory). */
int vkt_llmc_model_read(const char *path, vkt_checkpoint *ck, char *err, size_t errlen);
/* The same on a file in memory (name for messages): what a fuzzer calls. */
int vkt_llmc_model_parse(const unsigned char *buf, size_t len, const char *name,
                         vkt_checkpoint *ck, char *err, size_t errlen);
/* Writes version 3 (fp32) atomically. 0, or 1 with err. */
int vkt_llmc_model_write(const char *path, const vkt_gpt2_shape *s, const float *params,
                         char *err, size_t errlen);

/* Weights from any of: a vktrain checkpoint file, a directory holding checkpoint.bin (a run's
 * out_dir), or an llm.c model file (by its magic). 0, or 2 with err. */
int vkt_weights_read(const char *path, vkt_checkpoint *ck, char *err, size_t errlen);

#endif
