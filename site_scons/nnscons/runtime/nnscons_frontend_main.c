/*
 * nnscons host runner of a generated audio front end: <name>_frontend_test IN.npy OUT.npy
 *
 * IN: int16 audio [N, samples] (or one clip [samples]); OUT: the front end's features [N, frames, coefficients],
 * int16 (Q8.7, arm_mfcc_q15) or float32 (arm_mfcc_f32). Compiled with -DNNSCONS_FRONTEND_INFO=<name>_frontend_info
 * and -include <name>_frontend.h. Every problem is one line on stderr and exit status 1; OUT is written whole or
 * not at all.
 */
#include "nnscons_npy.h"

#ifndef NNSCONS_FRONTEND_INFO
#error "compile with -DNNSCONS_FRONTEND_INFO=<name>_frontend_info -include <name>_frontend.h"
#endif

int main(int argc, char **argv)
{
    const nnscons_frontend_info_t *info = &NNSCONS_FRONTEND_INFO;
    npy_region_t region;
    npy_header_t header;
    size_t count, clips, samples, frames, out_bytes, k;
    int16_t *audio;
    unsigned char *features;
    char out_header[256];
    size_t header_len;
    int32_t shape[3];
    FILE *f;

    npy_program = argv[0];
    if (argc != 3) {
        fprintf(stderr, "usage: %s IN.npy OUT.npy  (int16 audio [N, samples] in, %s's features out)\n",
                npy_program, info->name);
        return 2;
    }
    f = fopen(argv[1], "rb");
    if (f == NULL) {
        npy_fail(argv[1], "%s", strerror(errno));
    }
    region.size = npy_file_size(f, argv[1]);
    npy_seek(f, argv[1], 0);
    region.f = f;
    region.label = argv[1];
    region.offset = 0;
    region.used = 0;
    region.check_crc = 0;
    region.expected_crc = region.crc = 0;
    audio = (int16_t *)npy_read_array(&region, &header, &count);
    fclose(f);
    if (header.kind != 'i' || header.item_size != 2 || header.rank < 1 || header.rank > 2) {
        npy_fail(argv[1], "the audio must be int16 [N, samples] or [samples]");
    }
    clips = header.rank == 2 ? (size_t)header.shape[0] : 1u;
    samples = (size_t)header.shape[header.rank - 1];
    if (samples > UINT32_MAX || (frames = info->frames((uint32_t)samples)) == 0u) {
        npy_fail(argv[1], "clips of %lu samples give no frame", (unsigned long)samples);
    }
    out_bytes = clips * frames * info->coefficients * info->feature_size;
    features = (unsigned char *)malloc(out_bytes ? out_bytes : 1u);
    if (features == NULL) {
        npy_fail(argv[2], "out of memory");
    }
    for (k = 0; k < clips; k++) {
        const int32_t status = info->run(audio + k * samples, (uint32_t)samples,
                                         features + k * frames * info->coefficients * info->feature_size);
        if (status != (int32_t)frames) {
            npy_fail(argv[1], "clip %lu: the front end failed (status %ld)", (unsigned long)k, (long)status);
        }
    }
    shape[0] = (int32_t)clips;
    shape[1] = (int32_t)frames;
    shape[2] = (int32_t)info->coefficients;
    header_len = npy_header_bytes(out_header, sizeof out_header, info->is_float ? 'f' : 'i', (int)info->feature_size,
                                  (long)clips, 3, shape);
    npy_write(argv[2], out_header, header_len, features, out_bytes);
    free(features);
    free(audio);
    return 0;
}
