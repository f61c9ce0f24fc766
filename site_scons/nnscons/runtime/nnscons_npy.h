/*
 * nnscons host test binary: .npy arrays, for nnscons_test_main.c (static functions, included once).
 *
 * Reading: an array is read from a region of an open file: a whole .npy file, or one member of an .npz archive
 * (nnscons_npz.h). Nothing is allocated before the array's header has been checked against the bytes the region
 * really holds, so a header claiming 2^40 samples is one line ("truncated .npy data ..."), not a huge
 * allocation; a region that holds more than the header says is refused too. An .npz member's CRC-32 is checked
 * as it is read.
 *
 * Writing: the header of a .npy file, and a whole .npy file; a file that cannot be written completely is removed.
 *
 * Every problem is one line on stderr, "<program>: <file>: <problem>", and exit status 1 (npy_fail).
 */
#ifndef NNSCONS_NPY_H
#define NNSCONS_NPY_H

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_MAX_HEADER 65536
#define NPY_MAX_RANK 8
#define NPY_MAX_LABEL 512

static const char *npy_program = "nnscons_test";

static void npy_fail(const char *file, const char *format, ...)
{
    va_list args;
    fprintf(stderr, "%s: %s: ", npy_program, file);
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fputc('\n', stderr);
    exit(1);
}

/* ---- CRC-32 (zip's: polynomial 0xEDB88320) ------------------------------------------------------------------- */
static uint32_t npy_crc_update(uint32_t crc, const void *data, size_t size)
{
    static uint32_t table[256];
    static int ready = 0;
    const unsigned char *bytes = (const unsigned char *)data;
    size_t i;
    if (!ready) {
        uint32_t n, k, c;
        for (n = 0; n < 256u; n++) {
            for (c = n, k = 0; k < 8u; k++) {
                c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            }
            table[n] = c;
        }
        ready = 1;
    }
    crc = ~crc;
    for (i = 0; i < size; i++) {
        crc = table[(crc ^ bytes[i]) & 0xFFu] ^ (crc >> 8);
    }
    return ~crc;
}

/* ---- reading ------------------------------------------------------------------------------------------------- */
typedef struct {
    char kind;          /* 'i' signed integer, 'u' unsigned, 'f' float */
    int item_size;
    int rank;
    long shape[NPY_MAX_RANK];
} npy_header_t;

/* Bytes [offset, offset + size) of an open file: a whole .npy, or one stored .npz member. */
typedef struct {
    FILE *f;
    const char *label;      /* the file (and member) for messages */
    long offset;
    long size;
    long used;              /* bytes read so far */
    int check_crc;
    uint32_t expected_crc;
    uint32_t crc;
} npy_region_t;

static long npy_file_size(FILE *f, const char *file)
{
    long size;
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        npy_fail(file, "cannot determine the file's size (not a regular file?)");
    }
    return size;
}

static void npy_seek(FILE *f, const char *label, long offset)
{
    if (fseek(f, offset, SEEK_SET) != 0) {
        npy_fail(label, "cannot seek to byte %ld", offset);
    }
}

/* Reads exactly `size` bytes of the region, or fails with `what` ("truncated ..."). */
static void npy_read(npy_region_t *region, void *buffer, size_t size, const char *what)
{
    if (size > (size_t)(region->size - region->used) || fread(buffer, 1, size, region->f) != size) {
        npy_fail(region->label, "%s", what);
    }
    region->used += (long)size;
    if (region->check_crc) {
        region->crc = npy_crc_update(region->crc, buffer, size);
    }
}

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

static void npy_parse_descr(const char *label, const char *descr, npy_header_t *out)
{
    char *end;
    long size;
    if (descr[0] != '\'' || descr[1] == '\0' || strchr("<>|=", descr[1]) == NULL || descr[2] == '\0' ||
        strchr("iuf", descr[2]) == NULL) {
        npy_fail(label, "unsupported dtype in the .npy header (integers or floats expected)");
    }
    errno = 0;
    size = strtol(descr + 3, &end, 10);
    if (end == descr + 3 || *end != '\'' || errno != 0 || (size != 1 && size != 2 && size != 4 && size != 8)) {
        npy_fail(label, "unreadable dtype in the .npy header");
    }
    if (descr[1] == '>' && size > 1) {
        npy_fail(label, "big-endian arrays are not supported");
    }
    out->kind = descr[2];
    out->item_size = (int)size;
}

static void npy_parse_header(const char *label, const char *header, npy_header_t *out)
{
    const char *descr = npy_field(header, "descr");
    const char *order = npy_field(header, "fortran_order");
    const char *shape = npy_field(header, "shape");
    if (descr == NULL || order == NULL || shape == NULL) {
        npy_fail(label, "not a .npy header (descr, fortran_order and shape expected)");
    }
    if (strncmp(order, "False", 5) != 0) {
        npy_fail(label, "Fortran-ordered arrays are not supported; save a C-contiguous array");
    }
    npy_parse_descr(label, descr, out);
    if (shape[0] != '(') {
        npy_fail(label, "unreadable shape in the .npy header");
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
            npy_fail(label, "unreadable shape in the .npy header");
        }
        out->shape[out->rank++] = dim;
        shape = end;
    }
}

/* The bytes of data the header's shape and dtype need; elements in *count. */
static size_t npy_data_bytes(const char *label, const npy_header_t *header, size_t *count)
{
    size_t total = 1;
    int i;
    for (i = 0; i < header->rank; i++) {
        size_t dim = (size_t)header->shape[i];
        if (dim != 0 && total > SIZE_MAX / 16u / dim) {
            npy_fail(label, "the header's shape is too large for any file");
        }
        total *= dim;
    }
    *count = total;
    return total * (size_t)header->item_size;
}

/* Reads the array a region holds; returns its data (malloc'ed) and fills the header. */
static void *npy_read_array(npy_region_t *region, npy_header_t *header, size_t *count)
{
    unsigned char prefix[NPY_MAGIC_LEN + 2], length_bytes[4];
    size_t header_len, length_size, bytes, available;
    char *text;
    void *data;
    npy_read(region, prefix, sizeof prefix, "not a .npy file (too short)");
    if (memcmp(prefix, NPY_MAGIC, NPY_MAGIC_LEN) != 0) {
        npy_fail(region->label, "not a .npy file");
    }
    if (prefix[NPY_MAGIC_LEN] < 1 || prefix[NPY_MAGIC_LEN] > 3) {
        npy_fail(region->label, "unsupported .npy format version %d", prefix[NPY_MAGIC_LEN]);
    }
    length_size = prefix[NPY_MAGIC_LEN] == 1 ? 2 : 4;
    npy_read(region, length_bytes, length_size, "truncated .npy header");
    header_len = length_bytes[0] | ((size_t)length_bytes[1] << 8);
    if (length_size == 4) {
        header_len |= ((size_t)length_bytes[2] << 16) | ((size_t)length_bytes[3] << 24);
    }
    if (header_len == 0 || header_len > NPY_MAX_HEADER) {
        npy_fail(region->label, "bad .npy header length");
    }
    text = calloc(header_len + 1, 1);
    if (text == NULL) {
        npy_fail(region->label, "out of memory");
    }
    npy_read(region, text, header_len, "truncated .npy header");
    npy_parse_header(region->label, text, header);
    free(text);
    bytes = npy_data_bytes(region->label, header, count);
    available = (size_t)(region->size - region->used);
    if (bytes > available) {
        npy_fail(region->label, "truncated .npy data: the header's shape needs %zu bytes, the file holds %zu", bytes,
                 available);
    }
    if (bytes < available) {
        npy_fail(region->label, "%zu bytes after the array's data (the header's shape needs %zu): not an array "
                 "numpy wrote", available - bytes, bytes);
    }
    data = malloc(bytes ? bytes : 1);
    if (data == NULL) {
        npy_fail(region->label, "out of memory for %zu bytes", bytes);
    }
    npy_read(region, data, bytes, "truncated .npy data");
    if (region->check_crc && region->crc != region->expected_crc) {
        npy_fail(region->label, "CRC-32 mismatch: the archive is damaged");
    }
    return data;
}

/* ---- writing ------------------------------------------------------------------------------------------------- */
/* The header of a .npy file (version 1.0, padded to a multiple of 64 bytes); returns its length. */
static size_t npy_header_bytes(char *out, size_t out_size, char kind, int element_size, long n, int rank,
                               const int32_t *shape)
{
    char dict[256], dims[160];
    size_t used, padded, i;
    int d;
    used = (size_t)snprintf(dims, sizeof dims, "(%ld,", n);
    for (d = 1; d < rank; d++) {
        used += (size_t)snprintf(dims + used, sizeof dims - used, " %ld,", (long)shape[d]);
    }
    if (rank > 1) {
        dims[used - 1] = ')';
    } else {
        snprintf(dims + used, sizeof dims - used, ")");
    }
    used = (size_t)snprintf(dict, sizeof dict, "{'descr': '%c%c%d', 'fortran_order': False, 'shape': %s, }",
                            element_size == 1 ? '|' : '<', kind, element_size, dims);
    padded = ((10 + used + 1 + 63) / 64) * 64;        /* magic, version, length, dictionary, newline */
    if (padded > out_size) {
        return 0;
    }
    memcpy(out, NPY_MAGIC "\x01\x00", 8);
    out[8] = (char)((padded - 10) & 0xFFu);
    out[9] = (char)((padded - 10) >> 8);
    memcpy(out + 10, dict, used);
    for (i = 10 + used; i < padded - 1; i++) {
        out[i] = ' ';
    }
    out[padded - 1] = '\n';
    return padded;
}

static void npy_write_failed(FILE *f, const char *file)
{
    if (f != NULL) {
        fclose(f);
    }
    remove(file);
    npy_fail(file, "write failed");
}

static void npy_write_all(FILE *f, const char *file, const void *data, size_t size)
{
    if (size != 0 && fwrite(data, 1, size, f) != size) {
        npy_write_failed(f, file);
    }
}

/* Writes one array as a .npy file. */
static void npy_write(const char *file, const char *header, size_t header_len, const void *data, size_t data_len)
{
    FILE *f = fopen(file, "wb");
    if (f == NULL) {
        npy_fail(file, "%s", strerror(errno));
    }
    npy_write_all(f, file, header, header_len);
    npy_write_all(f, file, data, data_len);
    if (fclose(f) != 0) {
        npy_write_failed(NULL, file);
    }
}

#endif /* NNSCONS_NPY_H */
