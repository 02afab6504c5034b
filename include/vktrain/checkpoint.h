/* Checkpoints: a versioned file of sections, each with a CRC32, holding everything a run
 * needs to continue exactly (shape, step, loader position, parameters, AdamW moments, config).
 *
 *   "VKTCKPT\0"  u32 version (1)  u32 section count
 *   per section: u32 tag  u32 crc32(payload)  u64 payload bytes  payload
 *   tags: SHPE (6 x int32: maxT V Vp L NH C), STEP (int32 step, u64 loader rng, u64 loader
 *         batches), CONF (effective INI text), PARM (fp32 params), ADAM (fp32 m then v)
 * Written to a temporary name and renamed, so a crash never leaves a half file behind. */
#ifndef VKTRAIN_CHECKPOINT_H
#define VKTRAIN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "vktrain/config.h"
#include "vktrain/data.h"
#include "vktrain/model.h"

#define VKT_CHECKPOINT_VERSION 1
#define VKT_CHECKPOINT_FILE "checkpoint.bin"

typedef struct vkt_checkpoint {
    vkt_gpt2_shape shape;
    int step;
    vkt_loader_state loader;
    char *config_text;       /* NUL-terminated */
    float *params;           /* num_params floats */
    float *adam;             /* 2 * num_params floats (m then v), or NULL when absent */
    size_t num_params;
} vkt_checkpoint;

/* Writes path atomically (path.tmp, then rename). 0, or 1 with err naming the file. */
int vkt_checkpoint_save(const char *path, vkt_model *m, const vkt_config *cfg, int step,
                        const vkt_loader_state *loader, char *err, size_t errlen);
/* Reads and verifies (magic, version, every CRC, sizes). 0, or 2 with err naming the file. */
int vkt_checkpoint_read(const char *path, vkt_checkpoint *ck, char *err, size_t errlen);
void vkt_checkpoint_free(vkt_checkpoint *ck);

#endif
