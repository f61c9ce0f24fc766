/*
 * nnscons host test binary: .npz archives (zips of .npy files), for nnscons_test_main.c (static functions).
 *
 * Reading: the central directory of an archive as numpy's savez and nnscons.fileio.npz_bytes write it, every
 * offset and size checked against the file; a member is then read as an npy_region_t (nnscons_npy.h), its CRC-32
 * checked. Compressed or encrypted members and zip64 archives (over 4 GB) are refused with one line.
 *
 * Writing: several arrays as an archive of stored members with fixed timestamps (numpy.load reads it).
 */
#ifndef NNSCONS_NPZ_H
#define NNSCONS_NPZ_H

#include "nnscons_npy.h"

#define ZIP_MAX_NAME 64
#define ZIP_MAX_MEMBER 0xFFFFFFFEul          /* sizes and offsets of a zip without zip64 */

/* ---- .npz (zip) directory ------------------------------------------------------------------------------------ */
typedef struct {
    char name[ZIP_MAX_NAME];
    int method;             /* 0: stored */
    int encrypted;
    uint32_t crc;
    long size;              /* compressed size */
    long data_offset;       /* after the local header */
} zip_member_t;

typedef struct {
    zip_member_t *members;
    int count;
} zip_directory_t;

static uint32_t zip_u16(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8);
}

static uint32_t zip_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* The end-of-central-directory record: fills the directory's offset, size and entry count; returns its offset. */
static long zip_find_end(FILE *f, const char *file, long file_size, long *cd_offset, long *cd_size, int *entries)
{
    unsigned char *tail;
    long tail_len = file_size < 22 + 65535 ? file_size : 22 + 65535, pos, at = -1;
    tail = malloc((size_t)tail_len + 1);
    if (tail == NULL) {
        npy_fail(file, "out of memory");
    }
    npy_seek(f, file, file_size - tail_len);
    if (fread(tail, 1, (size_t)tail_len, f) != (size_t)tail_len) {
        npy_fail(file, "read failed");
    }
    for (pos = tail_len - 22; pos >= 0 && at < 0; pos--) {
        if (memcmp(tail + pos, "PK\x05\x06", 4) == 0 && pos + 22 + (long)zip_u16(tail + pos + 20) == tail_len) {
            at = pos;
        }
    }
    if (at < 0) {
        npy_fail(file, "not an .npz file (no zip directory)");
    }
    if (zip_u16(tail + at + 4) != 0 || zip_u16(tail + at + 6) != 0 || zip_u16(tail + at + 8) != zip_u16(tail + at + 10)) {
        npy_fail(file, "multi-disk zip archives are not supported");
    }
    if (zip_u16(tail + at + 10) == 0xFFFFu || zip_u32(tail + at + 12) == 0xFFFFFFFFu ||
        zip_u32(tail + at + 16) == 0xFFFFFFFFu) {
        npy_fail(file, "zip64 archives (over 4 GB) are not supported");
    }
    *entries = (int)zip_u16(tail + at + 10);
    *cd_size = (long)zip_u32(tail + at + 12);
    *cd_offset = (long)zip_u32(tail + at + 16);
    at += file_size - tail_len;
    free(tail);
    if (*cd_offset > at || *cd_size > at - *cd_offset) {
        npy_fail(file, "damaged zip directory");
    }
    return at;
}

/* Where a member's data starts: after its local header (whose name and extra lengths may differ from the
 * directory's). */
static long zip_data_offset(FILE *f, const char *file, long header_offset, long limit)
{
    unsigned char local[30];
    long offset;
    npy_seek(f, file, header_offset);
    if (header_offset + 30 > limit || fread(local, 1, sizeof local, f) != sizeof local ||
        memcmp(local, "PK\x03\x04", 4) != 0) {
        npy_fail(file, "damaged zip member header at byte %ld", header_offset);
    }
    offset = header_offset + 30 + (long)zip_u16(local + 26) + (long)zip_u16(local + 28);
    return offset;
}

static void zip_parse_entry(FILE *f, const char *file, const unsigned char *p, zip_member_t *member, long cd_offset)
{
    uint32_t name_len = zip_u16(p + 28);
    uint32_t compressed = zip_u32(p + 20), local = zip_u32(p + 42);
    if (name_len >= ZIP_MAX_NAME) {
        npy_fail(file, "a member name of %lu bytes (expected names like x0.npy)", (unsigned long)name_len);
    }
    memcpy(member->name, p + 46, name_len);
    member->name[name_len] = '\0';
    if (compressed == 0xFFFFFFFFu || local == 0xFFFFFFFFu) {
        npy_fail(file, "%s: zip64 members (over 4 GB) are not supported", member->name);
    }
    member->encrypted = (int)(zip_u16(p + 8) & 1u);
    member->method = (int)zip_u16(p + 10);
    member->crc = zip_u32(p + 16);
    member->size = (long)compressed;
    if (member->method == 0 && zip_u32(p + 24) != compressed) {
        npy_fail(file, "%s: stored member whose sizes differ", member->name);
    }
    member->data_offset = zip_data_offset(f, file, (long)local, cd_offset);
    if (member->data_offset > cd_offset || member->size > cd_offset - member->data_offset) {
        npy_fail(file, "%s: member data beyond the archive's data", member->name);
    }
}

static void zip_read_directory(FILE *f, const char *file, zip_directory_t *dir)
{
    long file_size = npy_file_size(f, file), cd_offset, cd_size, pos = 0;
    int entries, i;
    unsigned char *cd;
    zip_find_end(f, file, file_size, &cd_offset, &cd_size, &entries);
    cd = malloc((size_t)cd_size + 1);
    dir->members = calloc((size_t)entries + 1, sizeof *dir->members);
    if (cd == NULL || dir->members == NULL) {
        npy_fail(file, "out of memory");
    }
    npy_seek(f, file, cd_offset);
    if (fread(cd, 1, (size_t)cd_size, f) != (size_t)cd_size) {
        npy_fail(file, "truncated zip directory");
    }
    for (i = 0; i < entries; i++) {
        if (cd_size - pos < 46 || memcmp(cd + pos, "PK\x01\x02", 4) != 0) {
            npy_fail(file, "damaged zip directory (entry %d)", i);
        }
        if (cd_size - pos - 46 < (long)(zip_u16(cd + pos + 28) + zip_u16(cd + pos + 30) + zip_u16(cd + pos + 32))) {
            npy_fail(file, "damaged zip directory (entry %d)", i);
        }
        zip_parse_entry(f, file, cd + pos, &dir->members[i], cd_offset);
        pos += 46 + (long)(zip_u16(cd + pos + 28) + zip_u16(cd + pos + 30) + zip_u16(cd + pos + 32));
    }
    dir->count = entries;
    free(cd);
}

/* The region of an .npz member (a stored one: compressed members are refused). */
static npy_region_t zip_member_region(FILE *f, const char *file, const zip_member_t *member, char *label)
{
    npy_region_t region;
    snprintf(label, NPY_MAX_LABEL, "%s: %s", file, member->name);
    if (member->encrypted) {
        npy_fail(label, "encrypted members are not supported");
    }
    if (member->method != 0) {
        npy_fail(label, "compressed member (np.savez_compressed?); save the arrays with np.savez");
    }
    npy_seek(f, label, member->data_offset);
    region.f = f;
    region.label = label;
    region.offset = member->data_offset;
    region.size = member->size;
    region.used = 0;
    region.check_crc = 1;
    region.expected_crc = member->crc;
    region.crc = 0;
    return region;
}

/* ---- writing ------------------------------------------------------------------------------------------------- */
static void zip_put16(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v & 0xFFu);
    p[1] = (unsigned char)((v >> 8) & 0xFFu);
}

static void zip_put32(unsigned char *p, uint32_t v)
{
    zip_put16(p, v & 0xFFFFu);
    zip_put16(p + 2, v >> 16);
}

/* One member of an .npz being written: a .npy header and the data. */
typedef struct {
    char name[ZIP_MAX_NAME];
    char header[256];
    size_t header_len;
    const void *data;
    size_t data_len;
    uint32_t crc;
    uint32_t offset;
} zip_out_member_t;

/* The fixed part of a local header (30 bytes; is_central 0) or of a central directory entry (46 bytes). */
static size_t zip_entry_header(unsigned char *p, const zip_out_member_t *m, int is_central)
{
    size_t at = is_central ? 2 : 0;
    uint32_t size = (uint32_t)(m->header_len + m->data_len);
    memset(p, 0, 46);
    memcpy(p, is_central ? "PK\x01\x02" : "PK\x03\x04", 4);
    if (is_central) {
        zip_put16(p + 4, 20u);                       /* made by: version 2.0 */
    }
    zip_put16(p + 4 + at, 20u);                      /* needed: version 2.0 */
    zip_put16(p + 12 + at, 0x21u);                   /* date: 1980-01-01, time 00:00 */
    zip_put32(p + 14 + at, m->crc);
    zip_put32(p + 18 + at, size);
    zip_put32(p + 22 + at, size);
    zip_put16(p + 26 + at, (uint32_t)strlen(m->name));
    if (is_central) {
        zip_put32(p + 38, 0644u << 16);              /* external attributes: a regular file, rw-r--r-- */
        zip_put32(p + 42, m->offset);
    }
    return is_central ? 46 : 30;
}

/* Writes the members as a stored .npz archive (numpy.load reads it). */
static void zip_write(const char *file, zip_out_member_t *members, int count)
{
    unsigned char record[46];
    uint64_t offset = 0, directory;
    int i;
    FILE *f = fopen(file, "wb");
    if (f == NULL) {
        npy_fail(file, "%s", strerror(errno));
    }
    for (i = 0; i < count; i++) {
        zip_out_member_t *m = &members[i];
        size_t length = zip_entry_header(record, m, 0);
        if ((uint64_t)m->data_len > ZIP_MAX_MEMBER / 2u ||
            offset + 30u + ZIP_MAX_NAME + m->header_len + m->data_len > ZIP_MAX_MEMBER) {
            fclose(f);
            remove(file);
            npy_fail(file, "outputs over 4 GB do not fit an .npz without zip64");
        }
        m->offset = (uint32_t)offset;
        npy_write_all(f, file, record, length);
        npy_write_all(f, file, m->name, strlen(m->name));
        npy_write_all(f, file, m->header, m->header_len);
        npy_write_all(f, file, m->data, m->data_len);
        offset += length + strlen(m->name) + m->header_len + m->data_len;
    }
    directory = offset;
    for (i = 0; i < count; i++) {
        size_t length = zip_entry_header(record, &members[i], 1);
        npy_write_all(f, file, record, length);
        npy_write_all(f, file, members[i].name, strlen(members[i].name));
        offset += length + strlen(members[i].name);
    }
    memset(record, 0, 22);
    memcpy(record, "PK\x05\x06", 4);
    zip_put16(record + 8, (uint32_t)count);
    zip_put16(record + 10, (uint32_t)count);
    zip_put32(record + 12, (uint32_t)(offset - directory));
    zip_put32(record + 16, (uint32_t)directory);
    npy_write_all(f, file, record, 22);
    if (fclose(f) != 0) {
        npy_write_failed(NULL, file);
    }
}

#endif /* NNSCONS_NPZ_H */
