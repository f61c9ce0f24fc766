/*
 * nnscons host test binary: runs a generated network on every input of a .npy or .npz file.
 *
 *     <name>_test IN.npy OUT.npy        a network with one input and one output
 *     <name>_test IN.npz OUT.npz        any network: IN holds x0, x1, ... (one array per network input, in order),
 *                                       OUT receives y0, y1, ... (one per network output)
 *     <name>_test --stream IN OUT       the N inputs as one stream: a network with state (recurrent layers) is
 *                                       reset before the first only, not before each (the default)
 *
 * A network behind an audio front end (compiled with -DNNSCONS_FRONTEND_INFO=<name>_frontend_info -include
 * <name>_frontend.h and linked with it and CMSIS-DSP) also takes raw audio: IN holding int16 [N, samples] (a shape
 * other than the network input's) runs each clip through the front end, whose features are quantized to the
 * network input as float features would be (nnscons_input.h).
 *
 * Input k holds N inputs, shape [N, *input_shape[1:]] (the generated network's NHWC shape), in the network
 * input's integer type, or float32, which is quantized with the input's scale and zero point; every input holds
 * the same N. Output k receives the N outputs, shape [N, *output_shape[1:]], in the network output's integer
 * type. IN is read as .npy or .npz by its content, OUT is written as .npz when its name ends in ".npz". An .npz
 * is read as numpy's savez writes it (stored members; compressed ones are refused). Exit status 0 on success; 1
 * with one line on stderr for bad input (a file whose header does not fit its size, a wrong shape or type, a
 * missing or unexpected member); 2 for bad usage.
 *
 * The file is generic: it is compiled once per model with -DNNSCONS_MODEL_INFO=<name>_info and
 * -include <name>.h, and reads everything it needs from that descriptor (see the generated header).
 *
 * Built with -DNNSCONS_TRACE (the model library too), it also implements the trace hook the generated code calls
 * after every layer: when the environment variable NNSCONS_TRACE_DIR names a folder, each layer's output bytes
 * are appended to <dir>/<layer_name>.bin (one record of count * element_size bytes per inference, in input
 * order), and <dir>/index.txt lists "layer_index layer_name element_size count" once per call of the first
 * inference (a layer run a few rows at a time calls once per band: its counts add up). A layer's file
 * is truncated on its first call of the run, so a run never sees an older run's records. Without the variable
 * the hook does nothing. (nnscons.diagnostics reads these files.)
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnscons_input.h"
#include "nnscons_npz.h"

#ifndef NNSCONS_MODEL_INFO
#error "compile with -DNNSCONS_MODEL_INFO=<name>_info -include <name>.h"
#endif

/* One network input or output: its array, as read from IN or to be written to OUT. */
typedef struct {
    char label[NPY_MAX_LABEL];      /* the file (and member) for messages */
    npy_header_t header;
    unsigned char *data;
    size_t count;                   /* elements */
} io_array_t;

#ifdef NNSCONS_TRACE
#define NNSCONS_TRACE_MAX_LAYERS 4096
#define NNSCONS_TRACE_MAX_PATH 4096

static unsigned char trace_seen[NNSCONS_TRACE_MAX_LAYERS];
static int trace_first_inference = 1;   /* the index lists the first inference's calls */

/* Appends one line to <dir>/index.txt (truncated by the run's first layer). */
static void trace_index(const char *dir, int first, uint32_t layer_index, const char *layer_name,
                        uint32_t element_size, uint32_t count)
{
    char path[NNSCONS_TRACE_MAX_PATH];
    FILE *f;
    snprintf(path, sizeof path, "%s/index.txt", dir);
    f = fopen(path, first ? "w" : "a");
    if (f == NULL) {
        npy_fail(path, "%s", strerror(errno));
    }
    fprintf(f, "%lu %s %lu %lu\n", (unsigned long)layer_index, layer_name, (unsigned long)element_size,
            (unsigned long)count);
    if (fclose(f) != 0) {
        npy_fail(path, "write failed");
    }
}

void nnscons_trace(const char *model, uint32_t layer_index, const char *layer_name, const void *output,
                   uint32_t element_size, uint32_t count)
{
    static int any_seen = 0;
    const char *dir = getenv("NNSCONS_TRACE_DIR");
    char path[NNSCONS_TRACE_MAX_PATH];
    size_t bytes = (size_t)element_size * count;
    int first;
    FILE *f;
    (void)model;
    if (dir == NULL || dir[0] == '\0') {
        return;
    }
    if (layer_index >= NNSCONS_TRACE_MAX_LAYERS) {
        npy_fail(layer_name, "layer index %lu beyond the trace's %d layers", (unsigned long)layer_index,
             NNSCONS_TRACE_MAX_LAYERS);
    }
    first = !trace_seen[layer_index];
    if (trace_first_inference) {
        /* a layer run a few rows at a time (a stream) calls once per band: one line each, counts add up */
        trace_index(dir, !any_seen, layer_index, layer_name, element_size, count);
        any_seen = 1;
    }
    trace_seen[layer_index] = 1;
    if ((size_t)snprintf(path, sizeof path, "%s/%s.bin", dir, layer_name) >= sizeof path) {
        npy_fail(dir, "trace path too long");
    }
    f = fopen(path, first ? "wb" : "ab");
    if (f == NULL) {
        npy_fail(path, "%s", strerror(errno));
    }
    if (fwrite(output, 1, bytes, f) != bytes || fclose(f) != 0) {
        npy_fail(path, "write failed");
    }
}
#endif

/* float -> the input's integers (nnscons_input.h; as <name>_quantize_input, in double). */
static void quantize(const char *file, const float *x, void *q, size_t count, const nnscons_io_info_t *io)
{
    size_t i;
    for (i = 0; i < count; i++) {
        if (isnan(x[i])) {
            npy_fail(file, "input %zu is NaN", i);
        }
        nnscons_store_input(q, i, nnscons_quantize_real((double)x[i], io), io);
    }
}

static void check_shape(const char *file, const npy_header_t *header, const nnscons_io_info_t *io)
{
    int i, ok = header->rank == io->rank && header->rank >= 1;
    for (i = 1; ok && i < io->rank; i++) {
        ok = header->shape[i] == io->shape[i];
    }
    if (!ok) {
        char expected[128];
        size_t used = (size_t)snprintf(expected, sizeof expected, "[N");
        for (i = 1; i < io->rank; i++) {
            used += (size_t)snprintf(expected + used, sizeof expected - used, ", %ld", (long)io->shape[i]);
        }
        snprintf(expected + used, sizeof expected - used, "]");
        npy_fail(file, "shape does not fit the network input: expected %s", expected);
    }
}

/* "x0", "x0, x1" or "x0 ... x3": the members an .npz of `count` arrays named `letter` holds. */
static const char *member_list(char letter, int count)
{
    static char text[64];
    if (count == 1) {
        snprintf(text, sizeof text, "%c0", letter);
    } else if (count == 2) {
        snprintf(text, sizeof text, "%c0, %c1", letter, letter);
    } else {
        snprintf(text, sizeof text, "%c0 ... %c%d", letter, letter, count - 1);
    }
    return text;
}

/* k when `name` is "x<k>.npy" (decimal, no leading zero), else -1. */
static int member_index(const char *name)
{
    const char *at = name + 1;
    long k = 0;
    if (name[0] != 'x' || !(*at >= '0' && *at <= '9') || (at[0] == '0' && at[1] != '.')) {
        return -1;
    }
    while (*at >= '0' && *at <= '9' && k < 1000) {
        k = 10 * k + (*at++ - '0');
    }
    return strcmp(at, ".npy") == 0 && k < 1000 ? (int)k : -1;
}

/* The inputs of an .npz: exactly x0 ... x<n-1>, each a stored .npy member. */
static void read_npz_inputs(FILE *f, const char *file, int n, io_array_t *arrays)
{
    zip_directory_t dir;
    int i, *seen = calloc((size_t)n, sizeof *seen);
    if (seen == NULL) {
        npy_fail(file, "out of memory");
    }
    zip_read_directory(f, file, &dir);
    for (i = 0; i < dir.count; i++) {
        int k = member_index(dir.members[i].name);
        npy_region_t region;
        if (k < 0 || k >= n) {
            npy_fail(file, "unexpected member %s (the network has %d input%s: %s)", dir.members[i].name, n,
                 n == 1 ? "" : "s", member_list('x', n));
        }
        if (seen[k]++) {
            npy_fail(file, "member %s appears twice", dir.members[i].name);
        }
        region = zip_member_region(f, file, &dir.members[i], arrays[k].label);
        arrays[k].data = npy_read_array(&region, &arrays[k].header, &arrays[k].count);
    }
    for (i = 0; i < n; i++) {
        if (!seen[i]) {
            npy_fail(file, "no array x%d (the network has %d input%s: %s)", i, n, n == 1 ? "" : "s",
                 member_list('x', n));
        }
    }
    free(seen);
    free(dir.members);
}

/* IN: a .npy (a network with one input) or an .npz (x0, x1, ...), told apart by their first bytes. */
static void read_inputs(const char *file, int n, io_array_t *arrays)
{
    unsigned char magic[NPY_MAGIC_LEN] = {0};
    FILE *f = fopen(file, "rb");
    if (f == NULL) {
        npy_fail(file, "%s", strerror(errno));
    }
    if (fread(magic, 1, sizeof magic, f) < 4) {
        npy_fail(file, "neither a .npy nor an .npz file (too short)");
    }
    if (memcmp(magic, NPY_MAGIC, NPY_MAGIC_LEN) == 0) {
        npy_region_t region;
        if (n != 1) {
            npy_fail(file, "the network has %d inputs: give an .npz holding %s", n, member_list('x', n));
        }
        snprintf(arrays[0].label, NPY_MAX_LABEL, "%s", file);
        region.size = npy_file_size(f, file);           /* (and back to the start) */
        region.f = f;
        region.label = arrays[0].label;
        region.offset = 0;
        region.used = 0;
        region.check_crc = 0;
        region.expected_crc = region.crc = 0;
        arrays[0].data = npy_read_array(&region, &arrays[0].header, &arrays[0].count);
    } else if (memcmp(magic, "PK\x03\x04", 4) == 0 || memcmp(magic, "PK\x05\x06", 4) == 0) {
        read_npz_inputs(f, file, n, arrays);
    } else {
        npy_fail(file, "neither a .npy nor an .npz file");
    }
    fclose(f);
}

/* Checks an input array against the network input and converts it to the input's integers (in place). */
static void prepare_input(io_array_t *array, const nnscons_io_info_t *io)
{
    check_shape(array->label, &array->header, io);
    if (array->header.kind == 'f' && array->header.item_size == 4) {
        unsigned char *quantized = malloc(array->count * io->element_size + 1);
        if (quantized == NULL) {
            npy_fail(array->label, "out of memory");
        }
        quantize(array->label, (const float *)(void *)array->data, quantized, array->count, io);
        free(array->data);
        array->data = quantized;
    } else if (array->header.kind != (io->is_signed ? 'i' : 'u') || array->header.item_size != io->element_size) {
        npy_fail(array->label, "dtype does not fit the network input: expected %s%d or float32",
             io->is_signed ? "int" : "uint", 8 * io->element_size);
    }
}

#ifdef NNSCONS_FRONTEND_INFO
/* Whether an array is raw audio for the front end: int16 [N, samples], and not already the network input. */
static int is_audio(const io_array_t *array, const nnscons_io_info_t *io)
{
    const npy_header_t *h = &array->header;
    return h->kind == 'i' && h->item_size == 2 && h->rank == 2 && !(io->rank == 2 && h->shape[1] == io->shape[1]);
}

/* Raw audio -> the network input: each clip through the front end, its features quantized (nnscons_input.h). */
static void audio_to_input(io_array_t *array, const nnscons_io_info_t *io)
{
    const nnscons_frontend_info_t *frontend = &NNSCONS_FRONTEND_INFO;
    const long clips = array->header.shape[0], samples = array->header.shape[1];
    const uint32_t frames = samples > 0 && samples <= (long)UINT32_MAX ? frontend->frames((uint32_t)samples) : 0u;
    const size_t values = (size_t)frames * frontend->coefficients;
    unsigned char *features, *input;
    long k;
    int i;
    if (values != io->size) {
        npy_fail(array->label, "clips of %ld samples give %lu frames of %lu coefficients (%lu values); the "
                 "network input takes %lu", samples, (unsigned long)frames, (unsigned long)frontend->coefficients,
                 (unsigned long)values, (unsigned long)io->size);
    }
    features = malloc(values * frontend->feature_size);
    input = malloc((size_t)clips * io->size * io->element_size + 1);
    if (features == NULL || input == NULL) {
        npy_fail(array->label, "out of memory");
    }
    for (k = 0; k < clips; k++) {
        const int32_t status = frontend->run((const int16_t *)(void *)array->data + (size_t)k * (size_t)samples,
                                             (uint32_t)samples, features);
        if (status != (int32_t)frames) {
            npy_fail(array->label, "clip %ld: the front end failed (status %ld)", k, (long)status);
        }
        nnscons_features_to_input(frontend, features, values, io,
                                  input + (size_t)k * io->size * io->element_size);
    }
    free(features);
    free(array->data);
    array->data = input;
    array->count = (size_t)clips * io->size;
    array->header.rank = io->rank;
    for (i = 1; i < io->rank; i++) {
        array->header.shape[i] = io->shape[i];
    }
    array->header.kind = io->is_signed ? 'i' : 'u';
    array->header.item_size = io->element_size;
}
#endif

static int ends_with(const char *text, const char *suffix)
{
    size_t n = strlen(text), k = strlen(suffix);
    return n >= k && strcmp(text + n - k, suffix) == 0;
}

/* OUT: the outputs as a .npy (one output) or an .npz of y0, y1, ... (by OUT's name). */
static void write_outputs(const char *file, const nnscons_model_info_t *model, long n, unsigned char **outputs)
{
    int k, count = model->n_outputs;
    zip_out_member_t *members = calloc((size_t)count, sizeof *members);
    if (members == NULL) {
        npy_fail(file, "out of memory");
    }
    for (k = 0; k < count; k++) {
        const nnscons_io_info_t *io = &model->outputs[k];
        zip_out_member_t *m = &members[k];
        snprintf(m->name, sizeof m->name, "y%d.npy", k);
        m->header_len = npy_header_bytes(m->header, sizeof m->header, io->is_signed ? 'i' : 'u', io->element_size,
                                         n, io->rank, io->shape);
        if (m->header_len == 0) {
            npy_fail(file, "output %d: shape too long for a .npy header", k);
        }
        m->data = outputs[k];
        m->data_len = (size_t)n * io->size * io->element_size;
        m->crc = npy_crc_update(npy_crc_update(0, m->header, m->header_len), m->data, m->data_len);
    }
    if (ends_with(file, ".npz")) {
        zip_write(file, members, count);
    } else {
        npy_write(file, members[0].header, members[0].header_len, members[0].data, members[0].data_len);
    }
    free(members);
}

int main(int argc, char **argv)
{
    const nnscons_model_info_t *model = &NNSCONS_MODEL_INFO;
    int n_in = model->n_inputs, n_out = model->n_outputs, k;
    io_array_t *inputs;
    unsigned char **outputs;
    const void **in_ptrs;
    void **out_ptrs;
    long n, i;
    int stream = 0;
    npy_program = argv[0];
    if (argc == 4 && strcmp(argv[1], "--stream") == 0) {
        stream = 1;     /* the inputs as one stream: the state recurrent layers carry is not reset between them */
        argv++;
        argc--;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: %s [--stream] IN.npy OUT.npy, or IN.npz OUT.npz (x0, x1, ... in; y0, y1, ... "
                "out); without --stream the network is reset before each input\n", npy_program);
        return 2;
    }
    if (n_out != 1 && !ends_with(argv[2], ".npz")) {
        fprintf(stderr, "%s: %s: the network has %d outputs: name the output file *.npz (it receives %s)\n",
                npy_program, argv[2], n_out, member_list('y', n_out));
        return 2;
    }
    inputs = calloc((size_t)n_in + 1, sizeof *inputs);
    outputs = calloc((size_t)n_out + 1, sizeof *outputs);
    in_ptrs = calloc((size_t)n_in + 1, sizeof *in_ptrs);
    out_ptrs = calloc((size_t)n_out + 1, sizeof *out_ptrs);
    if (inputs == NULL || outputs == NULL || in_ptrs == NULL || out_ptrs == NULL) {
        npy_fail(argv[1], "out of memory");
    }
    read_inputs(argv[1], n_in, inputs);
    for (k = 0; k < n_in; k++) {
#ifdef NNSCONS_FRONTEND_INFO
        if (n_in == 1 && is_audio(&inputs[k], &model->inputs[k])) {
            audio_to_input(&inputs[k], &model->inputs[k]);
        }
#endif
        prepare_input(&inputs[k], &model->inputs[k]);
        if (inputs[k].header.shape[0] != inputs[0].header.shape[0]) {
            npy_fail(inputs[k].label, "%ld samples, x0 has %ld: every input needs the same number",
                 inputs[k].header.shape[0], inputs[0].header.shape[0]);
        }
    }
    n = n_in ? inputs[0].header.shape[0] : 0;
    for (k = 0; k < n_out; k++) {
        size_t sample = (size_t)model->outputs[k].size * model->outputs[k].element_size;
        if (sample != 0 && (size_t)n > SIZE_MAX / 2u / sample) {
            npy_fail(argv[2], "outputs too large");
        }
        outputs[k] = malloc((size_t)n * sample + 1);
        if (outputs[k] == NULL) {
            npy_fail(argv[2], "out of memory for the outputs");
        }
    }
    for (i = 0; i < n; i++) {
        int status;
        for (k = 0; k < n_in; k++) {
            in_ptrs[k] = inputs[k].data + (size_t)i * model->inputs[k].size * model->inputs[k].element_size;
        }
        for (k = 0; k < n_out; k++) {
            out_ptrs[k] = outputs[k] + (size_t)i * model->outputs[k].size * model->outputs[k].element_size;
        }
        if ((!stream || i == 0) && model->reset != NULL) {
            model->reset();
        }
        status = model->invoke(in_ptrs, (void *const *)out_ptrs);
        if (status != 0) {
            npy_fail(argv[1], "invoke failed with status %d on input %ld", status, i);
        }
#ifdef NNSCONS_TRACE
        trace_first_inference = 0;
#endif
    }
    write_outputs(argv[2], model, n, outputs);
    for (k = 0; k < n_in; k++) {
        free(inputs[k].data);
    }
    for (k = 0; k < n_out; k++) {
        free(outputs[k]);
    }
    free(inputs);
    free(outputs);
    free(in_ptrs);
    free(out_ptrs);
    return 0;
}
