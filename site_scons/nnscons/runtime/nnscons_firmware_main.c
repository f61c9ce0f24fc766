/*
 * nnscons firmware runner: runs every model compiled into the image on its embedded inputs and prints one line
 * per inference on stdout (semihosting, or a board's UART), for nnscons/firmware/qemu.py to parse:
 *
 *     nnscons start models=2 clock_hz=25000000 counter=systick
 *     nnscons model=kws input=0 ticks=651200 instructions=26048000 output=7f80808080808080808080
 *     nnscons model=kws_seed input=0 frontend_ticks=... frontend_instructions=... ticks=... instructions=... output=...
 *     ...
 *     nnscons model=kws inputs=16 stack=1184 arena=23104
 *     nnscons done
 *
 * Built with -DNNSCONS_TRACE (the profile image), it also prints per layer of each model's first inference
 *
 *     nnscons layer model=kws index=3 name=depthwise_conv2d_1 ticks=22400 instructions=896000
 *
 * The start line also says which counter the image found (`counter=dwt|systick|<board timer>`, see
 * nnscons_cortex_m.c). `instructions` is ticks * 1e9 / the counter's clock: what QEMU executed with -icount
 * shift=0; where DWT counts (real hardware) the lines say `cycles=` instead;
 * `frontend_*` (a model behind an audio front end, whose embedded samples are raw audio) count the front end and the
 * quantization of its features into the network's input, the other counts the network alone;
 * `output` is the bytes of the outputs, in order, as hex; `stack` is the deepest the stack went (bytes, from its
 * top, so the runner's own frames are included) during the model's inferences; `arena` is the model's arena as
 * compiled for this target (activations and the kernels' scratch buffer). A command line `models=a,b`
 * (nnscons_command_line: over semihosting, QEMU -append "models=a,b"; a board has none) runs only those models.
 * On a failure the runner prints `nnscons error ...` and returns 1; main's return value is the exit status.
 *
 * The file is generic: the models come from the generated nnscons_firmware_models.c, their inputs from the
 * generated <name>_inputs.c files (see nnscons_firmware.h). Compile with -DNNSCONS_CLOCK_HZ=<processor clock>.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "nnscons_firmware.h"
#include "nnscons_input.h"
#include "nnscons_platform.h"

#ifndef NNSCONS_CLOCK_HZ
#error "compile with -DNNSCONS_CLOCK_HZ=<the processor clock in Hz>"
#endif

#define COMMAND_LINE_SIZE 256

static char *format_u64(char *end, uint64_t value)
{
    *--end = '\0';
    do {
        *--end = (char)('0' + value % 10u);
        value /= 10u;
    } while (value != 0);
    return end;
}

static void print_u64(const char *key, uint64_t value)
{
    char digits[24];
    fputs(key, stdout);
    fputs(format_u64(digits + sizeof digits, value), stdout);
}

/* "<prefix>instructions=N" (or "<prefix>cycles=N": nnscons_counter_unit) for a count of counter ticks */
static void print_count(const char *prefix, uint64_t ticks)
{
    fputs(prefix, stdout);
    fputs(nnscons_counter_unit(), stdout);
    print_u64("=", nnscons_counter_value(ticks));
}

static void print_hex(const uint8_t *bytes, uint32_t count)
{
    static const char hex[] = "0123456789abcdef";
    char chunk[129];
    uint32_t i, used = 0;
    for (i = 0; i < count; i++) {
        chunk[used++] = hex[bytes[i] >> 4];
        chunk[used++] = hex[bytes[i] & 15u];
        if (used == sizeof chunk - 1 || i + 1 == count) {
            chunk[used] = '\0';
            fputs(chunk, stdout);
            used = 0;
        }
    }
}

static uint32_t padded(uint32_t bytes)
{
    return (bytes + NNSCONS_FIRMWARE_ALIGN - 1u) / NNSCONS_FIRMWARE_ALIGN * NNSCONS_FIRMWARE_ALIGN;
}

static uint32_t io_bytes(const nnscons_io_info_t *io, uint8_t count)
{
    uint32_t total = 0;
    uint8_t i;
    for (i = 0; i < count; i++) {
        total += padded(io[i].size * io[i].element_size);
    }
    return total;
}

#ifdef NNSCONS_TRACE
/* The profile image (the models compiled with -DNNSCONS_TRACE): after each layer of a model's first inference the
 * generated code calls nnscons_trace, which prints `nnscons layer model=M index=I name=N ticks=T instructions=K`,
 * the count since the previous layer ended (or the inference began). Printing is not counted: the next layer's
 * count starts at the tick edge after it (nnscons_counter_sync). */
static uint64_t layer_start;
static int profiling;

void nnscons_trace(const char *model, uint32_t layer_index, const char *layer_name, const void *output,
                   uint32_t element_size, uint32_t count)
{
    const uint64_t ticks = nnscons_counter_ticks() - layer_start;
    (void)output;
    (void)element_size;
    (void)count;
    if (profiling) {
        printf("nnscons layer model=%s index=%lu name=%s", model, (unsigned long)layer_index, layer_name);
        print_u64(" ticks=", ticks);
        print_count(" ", ticks);
        fputs("\n", stdout);
    }
    layer_start = nnscons_counter_sync();
}

static void profile_begin(uint32_t sample, uint64_t start)
{
    profiling = sample == 0u;
    layer_start = start;
}
#else
static void profile_begin(uint32_t sample, uint64_t start)
{
    (void)sample;
    (void)start;
}
#endif

static int fail(const char *model, const char *message)
{
    printf("nnscons error model=%s %s\n", model, message);
    return 1;
}

/* Whether `name` is selected by a `models=a,b` word of the command line (no such word: every model). */
static int selected(const char *line, const char *name)
{
    const char *list = strstr(line, "models=");
    size_t length = strlen(name);
    if (list == NULL) {
        return 1;
    }
    list += strlen("models=");
    while (*list != '\0' && *list != ' ') {
        if (strncmp(list, name, length) == 0 && (list[length] == ',' || list[length] == ' ' ||
                                                 list[length] == '\0')) {
            return 1;
        }
        while (*list != '\0' && *list != ' ' && *list != ',') {
            list++;
        }
        if (*list == ',') {
            list++;
        }
    }
    return 0;
}

/* A model behind an audio front end: the clip through the front end, its features quantized into the network's
 * input (nnscons_input.h, as the host test binary does); `ticks` receives what both took. */
static int run_frontend(const nnscons_firmware_model_t *entry, const uint8_t *clip, uint64_t *ticks)
{
    const nnscons_frontend_info_t *frontend = entry->frontend;
    const nnscons_io_info_t *io = &entry->model->inputs[0];
    const uint32_t frames = frontend->frames(entry->audio_samples);
    const uint64_t start = nnscons_counter_sync();
    const int32_t status = frontend->run((const int16_t *)(const void *)clip, entry->audio_samples, entry->features);
    if (status != (int32_t)frames || frames * frontend->coefficients != io->size) {
        return fail(entry->model->name, "the front end failed or does not fit the network input");
    }
    nnscons_features_to_input(frontend, entry->features, io->size, io, entry->input);
    *ticks = nnscons_counter_ticks() - start;
    return 0;
}

static int run_model(const nnscons_firmware_model_t *entry)
{
    const nnscons_model_info_t *model = entry->model;
    const void *inputs[16];
    void *outputs[16];
    uint32_t sample, i, offset, stack, deepest = 0;
    if (model->n_inputs > 16 || model->n_outputs > 16) {
        return fail(model->name, "more than 16 inputs or outputs");
    }
    if ((entry->frontend != NULL ? padded(entry->audio_samples * 2u) : io_bytes(model->inputs, model->n_inputs)) !=
        entry->sample_bytes || (entry->frontend != NULL && model->n_inputs != 1)) {
        return fail(model->name, "the embedded inputs do not fit the model's inputs (rebuild them)");
    }
    if (io_bytes(model->outputs, model->n_outputs) > entry->output_bytes) {
        return fail(model->name, "the output buffer is smaller than the model's outputs (rebuild the inputs)");
    }
    for (i = 0, offset = 0; i < model->n_outputs; i++) {
        outputs[i] = entry->output + offset;
        offset += padded(model->outputs[i].size * model->outputs[i].element_size);
    }
    for (sample = 0; sample < entry->n_samples; sample++) {
        const uint8_t *data = entry->samples + (size_t)sample * entry->sample_bytes;
        uint64_t start, ticks, frontend_ticks = 0;
        int status;
        for (i = 0, offset = 0; i < model->n_inputs; i++) {
            inputs[i] = data + offset;
            offset += padded(model->inputs[i].size * model->inputs[i].element_size);
        }
        if (entry->frontend != NULL) {
            if (run_frontend(entry, data, &frontend_ticks) != 0) {
                return 1;
            }
            inputs[0] = entry->input;
        }
        if (model->reset != NULL) {
            model->reset();     /* each embedded sample is an independent input (the state recurrent layers carry) */
        }
        nnscons_stack_paint();
        start = nnscons_counter_sync();
        profile_begin(sample, start);
        status = model->invoke(inputs, outputs);
        ticks = nnscons_counter_ticks() - start;
        stack = nnscons_stack_peak();
        deepest = stack > deepest ? stack : deepest;
        if (status != 0) {
            printf("nnscons error model=%s input=%lu status=%d\n", model->name, (unsigned long)sample, status);
            return 1;
        }
        printf("nnscons model=%s input=%lu", model->name, (unsigned long)sample);
        if (entry->frontend != NULL) {
            print_u64(" frontend_ticks=", frontend_ticks);
            print_count(" frontend_", frontend_ticks);
        }
        print_u64(" ticks=", ticks);
        print_count(" ", ticks);
        fputs(" output=", stdout);
        for (i = 0; i < model->n_outputs; i++) {
            print_hex((const uint8_t *)outputs[i], model->outputs[i].size * model->outputs[i].element_size);
        }
        fputs("\n", stdout);
    }
    printf("nnscons model=%s inputs=%lu stack=%lu arena=%lu\n", model->name, (unsigned long)entry->n_samples,
           (unsigned long)deepest, (unsigned long)model->arena_size);
    return 0;
}

int main(void)
{
    static char line[COMMAND_LINE_SIZE];
    uint32_t m;
    nnscons_command_line(line, sizeof line);
    nnscons_counter_start();
    printf("nnscons start models=%lu clock_hz=%lu counter=%s\n", (unsigned long)nnscons_firmware_model_count,
           (unsigned long)NNSCONS_CLOCK_HZ, nnscons_counter_name());
    for (m = 0; m < nnscons_firmware_model_count; m++) {
        const nnscons_firmware_model_t *entry = nnscons_firmware_models[m];
        if (selected(line, entry->model->name) && run_model(entry) != 0) {
            fflush(stdout);
            return 1;
        }
    }
    puts("nnscons done");
    fflush(stdout);
    return 0;
}
