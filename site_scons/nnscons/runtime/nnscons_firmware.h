/*
 * nnscons firmware runner: the types shared by the runner (nnscons_firmware_main.c), the generated per-model
 * input files (<name>_inputs.c) and the generated model list (nnscons_firmware_models.c), and the few functions
 * the runner needs from a Cortex-M (nnscons_cortex_m.c).
 */
#ifndef NNSCONS_FIRMWARE_H
#define NNSCONS_FIRMWARE_H

#include <stdint.h>

/* The descriptor every generated model exports as <name>_info (same layout as in the generated <name>.h; the
 * guard lets a file include both). */
#ifndef NNSCONS_MODEL_INFO_DEFINED
#define NNSCONS_MODEL_INFO_DEFINED
typedef struct {
    uint8_t element_size;       /* bytes per element: 1, 2 or 4 (an int32 output) */
    uint8_t is_signed;
    uint8_t rank;
    int32_t shape[6];
    uint32_t size;              /* elements */
    float scale;
    int32_t zero_point;
} nnscons_io_info_t;

typedef struct {
    const char *name;
    const char *hash;
    uint32_t arena_size;
    uint8_t n_inputs;
    uint8_t n_outputs;
    const nnscons_io_info_t *inputs;
    const nnscons_io_info_t *outputs;
    int (*invoke)(const void *const *inputs, void *const *outputs);
    void (*reset)(void);        /* clears the state recurrent layers carry between calls (or does nothing) */
} nnscons_model_info_t;
#endif

/* The descriptor a generated audio front end exports as <name>_frontend_info (same layout as in the generated
 * <name>_frontend.h). */
#ifndef NNSCONS_FRONTEND_INFO_DEFINED
#define NNSCONS_FRONTEND_INFO_DEFINED
typedef struct {
    const char *name;
    uint32_t coefficients;
    uint32_t feature_size;      /* bytes of one feature: 2 (Q8.7 int16) or 4 (float) */
    int is_float;
    uint32_t (*frames)(uint32_t samples);
    int32_t (*run)(const int16_t *audio, uint32_t samples, void *features);
} nnscons_frontend_info_t;
#endif

/* Inside one sample the inputs (and inside the output buffer the outputs) follow each other in order, each
 * starting at a multiple of NNSCONS_FIRMWARE_ALIGN bytes. */
#define NNSCONS_FIRMWARE_ALIGN 8u

/* One model compiled into the firmware, with its embedded inputs (<name>_inputs.c defines <name>_firmware). */
typedef struct {
    const nnscons_model_info_t *model;
    uint32_t n_samples;
    uint32_t sample_bytes;      /* bytes of one sample: every input of one inference */
    const uint8_t *samples;     /* n_samples * sample_bytes */
    uint8_t *output;            /* room for the outputs of one inference */
    uint32_t output_bytes;
    /* A model behind an audio front end: the samples are clips of audio_samples int16 samples, which the front end
     * turns into `features`, then quantized into `input` (the network's one input); else all 0. */
    const nnscons_frontend_info_t *frontend;
    uint32_t audio_samples;
    uint8_t *features;
    uint8_t *input;
} nnscons_firmware_model_t;

/* nnscons_firmware_models.c (generated): the models of this image, in name order. */
extern const nnscons_firmware_model_t *const nnscons_firmware_models[];
extern const uint32_t nnscons_firmware_model_count;

/* nnscons_cortex_m.c: a 64-bit counter (DWT cycles, a board timer or SysTick, whichever counts first), and a stack
 * high-water mark. */
void nnscons_counter_start(void);
uint64_t nnscons_counter_ticks(void);
uint64_t nnscons_counter_sync(void);     /* waits for the next tick, then returns the count */
const char *nnscons_counter_name(void);  /* "dwt", "systick" or the board timer's name */
const char *nnscons_counter_unit(void);  /* "cycles" (dwt) or "instructions" (a clock under QEMU -icount shift=0) */
uint64_t nnscons_counter_value(uint64_t ticks);     /* ticks in that unit */

/* A board whose chip has no SysTick provides a free-running 32-bit up-counter (weak defaults: none). */
uint32_t nnscons_board_counter_start(void);         /* starts it; returns its frequency in Hz, 0 for none */
uint32_t nnscons_board_counter_read(void);
const char *nnscons_board_counter_name(void);
void nnscons_stack_paint(void);
uint32_t nnscons_stack_peak(void);

#endif
