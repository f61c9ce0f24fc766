/*
 * nnscons host test binary: runs a generated network on every input of a .npy file.
 *
 *     <name>_test IN.npy OUT.npy
 *
 * IN holds N inputs, shape [N, *input_shape[1:]] (the generated network's NHWC shape), in the network input's
 * integer type, or float32, which is quantized with the input's scale and zero point. OUT receives the N outputs,
 * shape [N, *output_shape[1:]], in the network output's integer type. Exit status 0 on success; 1 with one line on
 * stderr for bad input; 2 for bad usage.
 *
 * The file is generic: it is compiled once per model with -DNNSCONS_MODEL_INFO=<name>_info and
 * -include <name>.h, and reads everything it needs from that descriptor (see the generated header).
 *
 * Built with -DNNSCONS_TRACE (the model library too), it also implements the trace hook the generated code calls
 * after every layer: when the environment variable NNSCONS_TRACE_DIR names a folder, each layer's output bytes
 * are appended to <dir>/<layer_name>.bin (one record of count * element_size bytes per inference, in input
 * order), and <dir>/index.txt lists "layer_index layer_name element_size count" once per layer. A layer's file
 * is truncated on its first call of the run, so a run never sees an older run's records. Without the variable
 * the hook does nothing. (nnscons.diagnostics reads these files.)
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef NNSCONS_MODEL_INFO
#error "compile with -DNNSCONS_MODEL_INFO=<name>_info -include <name>.h"
#endif

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_MAX_HEADER 65536
#define NPY_MAX_RANK 8

static const char *program = "nnscons_test";

static void fail(const char *file, const char *format, ...)
{
    va_list args;
    fprintf(stderr, "%s: %s: ", program, file);
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fputc('\n', stderr);
    exit(1);
}

typedef struct {
    char kind;          /* 'i' signed integer, 'u' unsigned, 'f' float */
    int item_size;
    int rank;
    long shape[NPY_MAX_RANK];
} npy_header_t;

/* Finds `'key':` in a numpy header dictionary and returns the text after the colon. */
static const char *npy_field(const char *header, const char *key)
{
    char pattern[32];
    const char *at;
    snprintf(pattern, sizeof pattern, "'%s'", key);
    at = strstr(header, pattern);
    if (at == NULL) {
        return NULL;
    }
    at = strchr(at + strlen(pattern), ':');
    if (at == NULL) {
        return NULL;
    }
    at++;
    while (*at == ' ') {
        at++;
    }
    return at;
}

static void parse_npy_header(const char *file, const char *header, npy_header_t *out)
{
    const char *descr = npy_field(header, "descr");
    const char *order = npy_field(header, "fortran_order");
    const char *shape = npy_field(header, "shape");
    char byte_order;
    if (descr == NULL || order == NULL || shape == NULL) {
        fail(file, "not a .npy header (descr, fortran_order and shape expected)");
    }
    if (strncmp(order, "False", 5) != 0) {
        fail(file, "Fortran-ordered arrays are not supported; save a C-contiguous array");
    }
    if (descr[0] != '\'' || strlen(descr) < 5) {
        fail(file, "unreadable dtype in the .npy header");
    }
    byte_order = descr[1];
    out->kind = descr[2];
    out->item_size = atoi(descr + 3);
    if (byte_order == '>' && out->item_size > 1) {
        fail(file, "big-endian arrays are not supported");
    }
    if (shape[0] != '(') {
        fail(file, "unreadable shape in the .npy header");
    }
    out->rank = 0;
    shape++;
    for (;;) {
        char *end;
        long dim;
        while (*shape == ' ' || *shape == ',') {
            shape++;
        }
        if (*shape == ')') {
            break;
        }
        errno = 0;
        dim = strtol(shape, &end, 10);
        if (end == shape || errno != 0 || dim < 0 || out->rank == NPY_MAX_RANK) {
            fail(file, "unreadable shape in the .npy header");
        }
        out->shape[out->rank++] = dim;
        shape = end;
    }
}

/* Reads a whole .npy file; returns the data and fills the header. */
static void *read_npy(const char *file, npy_header_t *header, size_t *count)
{
    unsigned char prefix[NPY_MAGIC_LEN + 2];
    unsigned char length_bytes[4];
    size_t header_len, length_size, total = 1, bytes;
    char *text;
    void *data;
    int i;
    FILE *f = fopen(file, "rb");
    if (f == NULL) {
        fail(file, "%s", strerror(errno));
    }
    if (fread(prefix, 1, sizeof prefix, f) != sizeof prefix || memcmp(prefix, NPY_MAGIC, NPY_MAGIC_LEN) != 0) {
        fail(file, "not a .npy file");
    }
    length_size = prefix[NPY_MAGIC_LEN] == 1 ? 2 : 4;
    if (fread(length_bytes, 1, length_size, f) != length_size) {
        fail(file, "truncated .npy header");
    }
    header_len = length_bytes[0] | ((size_t)length_bytes[1] << 8);
    if (length_size == 4) {
        header_len |= ((size_t)length_bytes[2] << 16) | ((size_t)length_bytes[3] << 24);
    }
    if (header_len == 0 || header_len > NPY_MAX_HEADER) {
        fail(file, "bad .npy header length");
    }
    text = calloc(header_len + 1, 1);
    if (text == NULL || fread(text, 1, header_len, f) != header_len) {
        fail(file, "truncated .npy header");
    }
    parse_npy_header(file, text, header);
    free(text);
    for (i = 0; i < header->rank; i++) {
        if (header->shape[i] != 0 && total > SIZE_MAX / 16 / (size_t)header->shape[i]) {
            fail(file, "array too large");
        }
        total *= (size_t)header->shape[i];
    }
    bytes = total * (size_t)header->item_size;
    data = malloc(bytes ? bytes : 1);
    if (data == NULL) {
        fail(file, "out of memory for %zu bytes", bytes);
    }
    if (fread(data, 1, bytes, f) != bytes) {
        fail(file, "truncated .npy data: expected %zu bytes", bytes);
    }
    fclose(f);
    *count = total;
    return data;
}

static void write_npy(const char *file, const nnscons_io_info_t *io, long n, const void *data)
{
    char header[256];
    char shape[160];
    size_t used, padded, bytes = (size_t)n * io->size * io->element_size;
    int i;
    FILE *f;
    used = (size_t)snprintf(shape, sizeof shape, "(%ld,", n);
    for (i = 1; i < io->rank; i++) {
        used += (size_t)snprintf(shape + used, sizeof shape - used, " %ld,", (long)io->shape[i]);
    }
    if (io->rank > 1) {
        shape[used - 1] = ')';
    } else {
        snprintf(shape + used, sizeof shape - used, ")");
    }
    used = (size_t)snprintf(header, sizeof header, "{'descr': '%c%c%d', 'fortran_order': False, 'shape': %s, }",
                            io->element_size == 1 ? '|' : '<', io->is_signed ? 'i' : 'u', io->element_size, shape);
    /* magic (6) + version (2) + length (2) + header + newline, padded to a multiple of 64 */
    padded = ((10 + used + 1 + 63) / 64) * 64 - 10;
    f = fopen(file, "wb");
    if (f == NULL) {
        fail(file, "%s", strerror(errno));
    }
    fwrite(NPY_MAGIC "\x01\x00", 1, 8, f);
    fputc((int)(padded & 0xff), f);
    fputc((int)(padded >> 8), f);
    fwrite(header, 1, used, f);
    for (; used < padded - 1; used++) {
        fputc(' ', f);
    }
    fputc('\n', f);
    if (fwrite(data, 1, bytes, f) != bytes || fclose(f) != 0) {
        fail(file, "write failed");
    }
}

#ifdef NNSCONS_TRACE
#define NNSCONS_TRACE_MAX_LAYERS 4096
#define NNSCONS_TRACE_MAX_PATH 4096

static unsigned char trace_seen[NNSCONS_TRACE_MAX_LAYERS];

/* Appends one line to <dir>/index.txt (truncated by the run's first layer). */
static void trace_index(const char *dir, int first, uint32_t layer_index, const char *layer_name,
                        uint32_t element_size, uint32_t count)
{
    char path[NNSCONS_TRACE_MAX_PATH];
    FILE *f;
    snprintf(path, sizeof path, "%s/index.txt", dir);
    f = fopen(path, first ? "w" : "a");
    if (f == NULL) {
        fail(path, "%s", strerror(errno));
    }
    fprintf(f, "%lu %s %lu %lu\n", (unsigned long)layer_index, layer_name, (unsigned long)element_size,
            (unsigned long)count);
    if (fclose(f) != 0) {
        fail(path, "write failed");
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
        fail(layer_name, "layer index %lu beyond the trace's %d layers", (unsigned long)layer_index,
             NNSCONS_TRACE_MAX_LAYERS);
    }
    first = !trace_seen[layer_index];
    if (first) {
        trace_index(dir, !any_seen, layer_index, layer_name, element_size, count);
        trace_seen[layer_index] = 1;
        any_seen = 1;
    }
    if ((size_t)snprintf(path, sizeof path, "%s/%s.bin", dir, layer_name) >= sizeof path) {
        fail(dir, "trace path too long");
    }
    f = fopen(path, first ? "wb" : "ab");
    if (f == NULL) {
        fail(path, "%s", strerror(errno));
    }
    if (fwrite(output, 1, bytes, f) != bytes || fclose(f) != 0) {
        fail(path, "write failed");
    }
}
#endif

static long saturate(long value, const nnscons_io_info_t *io)
{
    long bits = 8L * io->element_size;
    long lo = io->is_signed ? -(1L << (bits - 1)) : 0;
    long hi = io->is_signed ? (1L << (bits - 1)) - 1 : (1L << bits) - 1;
    return value < lo ? lo : value > hi ? hi : value;
}

/* float -> the input's integers: round half away from zero, then saturate (as <name>_quantize_input). */
static void quantize(const char *file, const float *x, void *q, size_t count, const nnscons_io_info_t *io)
{
    size_t i;
    for (i = 0; i < count; i++) {
        double scaled = (double)x[i] / (double)io->scale;
        long value;
        if (isnan(scaled)) {
            fail(file, "input %zu is NaN", i);
        }
        scaled = scaled < -1e9 ? -1e9 : scaled > 1e9 ? 1e9 : scaled; /* keep the conversion to long defined */
        value = saturate((long)(scaled < 0 ? scaled - 0.5 : scaled + 0.5) + io->zero_point, io);
        if (io->element_size == 1) {
            ((int8_t *)q)[i] = (int8_t)value;
        } else {
            ((int16_t *)q)[i] = (int16_t)value;
        }
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
        fail(file, "shape does not fit the network input: expected %s", expected);
    }
}

int main(int argc, char **argv)
{
    const nnscons_model_info_t *model = &NNSCONS_MODEL_INFO;
    const nnscons_io_info_t *in_io, *out_io;
    npy_header_t header;
    size_t count;
    unsigned char *input, *output;
    long n, i;
    program = argv[0];
    if (argc != 3) {
        fprintf(stderr, "usage: %s IN.npy OUT.npy\n", program);
        return 2;
    }
    if (model->n_inputs != 1 || model->n_outputs != 1) {
        fprintf(stderr, "%s: the test binary supports networks with one input and one output\n", program);
        return 2;
    }
    in_io = &model->inputs[0];
    out_io = &model->outputs[0];
    input = read_npy(argv[1], &header, &count);
    check_shape(argv[1], &header, in_io);
    n = header.shape[0];
    if (header.kind == 'f' && header.item_size == 4) {
        unsigned char *quantized = malloc((size_t)n * in_io->size * in_io->element_size + 1);
        if (quantized == NULL) {
            fail(argv[1], "out of memory");
        }
        quantize(argv[1], (const float *)(void *)input, quantized, count, in_io);
        free(input);
        input = quantized;
    } else if (header.kind != (in_io->is_signed ? 'i' : 'u') || header.item_size != in_io->element_size) {
        fail(argv[1], "dtype does not fit the network input: expected %s%d or float32",
             in_io->is_signed ? "int" : "uint", 8 * in_io->element_size);
    }
    output = malloc((size_t)n * out_io->size * out_io->element_size + 1);
    if (output == NULL) {
        fail(argv[2], "out of memory");
    }
    for (i = 0; i < n; i++) {
        const void *inputs[1];
        void *outputs[1];
        int status;
        inputs[0] = input + (size_t)i * in_io->size * in_io->element_size;
        outputs[0] = output + (size_t)i * out_io->size * out_io->element_size;
        status = model->invoke(inputs, outputs);
        if (status != 0) {
            fail(argv[1], "invoke failed with status %d on input %ld", status, i);
        }
    }
    write_npy(argv[2], out_io, n, output);
    free(input);
    free(output);
    return 0;
}
