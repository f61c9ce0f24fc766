/*
 * nnscons: real values -> a network input's integers, shared by the host test main and the firmware runner so
 * that both quantize exactly alike (and as nnscons.firmware.inputs.quantize_like_host does in Python):
 * x / scale in double with the scale as the float the descriptor holds, round half away from zero, add the zero
 * point, saturate to the input's type.
 *
 * A network behind an audio front end reads the front end's features as real numbers: Q8.7 (arm_mfcc_q15) is
 * value / 128, float (arm_mfcc_f32) is itself; nnscons_features_to_input quantizes them so. The Python side
 * (nnscons.frontend.mfcc.real_features, then the host binary's float path) gives the same bytes.
 *
 * Include after the types are defined: nnscons_io_info_t (the generated <name>.h or nnscons_firmware.h) and, for
 * the front end, nnscons_frontend_info_t (<name>_frontend.h or nnscons_firmware.h).
 */
#ifndef NNSCONS_INPUT_H
#define NNSCONS_INPUT_H

#include <stddef.h>
#include <stdint.h>

#define NNSCONS_QUANTIZE_BOUND 1e9 /* |x / scale| clamped here first: the conversion to long stays defined */
#define NNSCONS_Q8_7_ONE 128.0     /* arm_mfcc_q15's features are Q8.7 */

static inline long nnscons_saturate(long value, const nnscons_io_info_t *io)
{
    const long bits = 8L * io->element_size;
    const long lo = io->is_signed ? -(1L << (bits - 1)) : 0;
    const long hi = io->is_signed ? (1L << (bits - 1)) - 1 : (1L << bits) - 1;
    return value < lo ? lo : value > hi ? hi : value;
}

/* The input's integer for a real value (not NaN: the caller decides what NaN means). */
static inline long nnscons_quantize_real(double real, const nnscons_io_info_t *io)
{
    double scaled = real / (double)io->scale;
    scaled = scaled < -NNSCONS_QUANTIZE_BOUND ? -NNSCONS_QUANTIZE_BOUND
             : scaled > NNSCONS_QUANTIZE_BOUND ? NNSCONS_QUANTIZE_BOUND : scaled;
    return nnscons_saturate((long)(scaled < 0 ? scaled - 0.5 : scaled + 0.5) + io->zero_point, io);
}

/* Stores element i of an int8 or int16 input. */
static inline void nnscons_store_input(void *input, size_t i, long value, const nnscons_io_info_t *io)
{
    if (io->element_size == 1) {
        ((int8_t *)input)[i] = (int8_t)value;
    } else {
        ((int16_t *)input)[i] = (int16_t)value;
    }
}

#ifdef NNSCONS_FRONTEND_INFO_DEFINED
/* `count` features of the front end `frontend` as the network input `io` (int8 or int16). */
static inline void nnscons_features_to_input(const nnscons_frontend_info_t *frontend, const void *features,
                                             size_t count, const nnscons_io_info_t *io, void *input)
{
    size_t i;
    for (i = 0; i < count; i++) {
        const double real = frontend->is_float ? (double)((const float *)features)[i]
                                               : (double)((const int16_t *)features)[i] / NNSCONS_Q8_7_ONE;
        nnscons_store_input(input, i, nnscons_quantize_real(real, io), io);
    }
}
#endif

#endif /* NNSCONS_INPUT_H */
