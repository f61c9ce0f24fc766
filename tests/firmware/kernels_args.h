/*
 * What tests/firmware/kernels_main.c and overlap_main.c both need of a case (kernels_case.h): its dimensions as the
 * CMSIS-NN structs, and the scratch size this build's getter asks for (_mve, _dsp or plain, as generated code
 * picks them).
 */
#ifndef KERNELS_ARGS_H
#define KERNELS_ARGS_H

#include <stdint.h>
#include <string.h>

#include "arm_nnfunctions.h"
#include "kernels_case.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#define KC_GETTER(name) name##_mve
#elif defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1)
#define KC_GETTER(name) name##_dsp
#else
#define KC_GETTER(name) name
#endif

static inline int32_t elements(const int32_t d[4]) { return d[0] * d[1] * d[2] * d[3]; }

static inline cmsis_nn_dims dims(const int32_t d[4])
{
    cmsis_nn_dims r;
    r.n = d[0];
    r.h = d[1];
    r.w = d[2];
    r.c = d[3];
    return r;
}

static inline cmsis_nn_tile tile(const int32_t hw[2])
{
    cmsis_nn_tile t;
    t.h = hw[0];
    t.w = hw[1];
    return t;
}

/** The scratch size the build's getter asks for (as generated code sizes it for this layer alone). */
static inline int32_t getter_size(const kc_case *c)
{
    const cmsis_nn_dims input = dims(c->input);
    const cmsis_nn_dims filter = dims(c->filter);
    const cmsis_nn_dims output = dims(c->output);
    if (c->kind == KC_CONV)
    {
        cmsis_nn_conv_params p;
        memset(&p, 0, sizeof(p));
        p.stride = tile(c->stride);
        p.padding = tile(c->padding);
        p.dilation = tile(c->dilation);
        return KC_GETTER(arm_convolve_wrapper_s8_get_buffer_size)(&p, &input, &filter, &output);
    }
    if (c->kind == KC_DEPTHWISE)
    {
        cmsis_nn_dw_conv_params p;
        memset(&p, 0, sizeof(p));
        p.ch_mult = c->ch_mult;
        p.stride = tile(c->stride);
        p.padding = tile(c->padding);
        p.dilation = tile(c->dilation);
        return KC_GETTER(arm_depthwise_conv_wrapper_s8_get_buffer_size)(&p, &input, &filter, &output);
    }
    if (c->kind == KC_FC)
    {
        return KC_GETTER(arm_fully_connected_s8_get_buffer_size)(&filter);
    }
    if (c->kind == KC_AVGPOOL)
    {
        return KC_GETTER(arm_avgpool_s8_get_buffer_size)(c->output[2], c->input[3]);
    }
    return 0;
}

#endif
