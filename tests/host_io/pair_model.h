/* The stand-in model of pair_model.c (tests/test_host_binary.py): the descriptor types, the descriptor. */
#ifndef PAIR_MODEL_H
#define PAIR_MODEL_H

#include "nnscons_firmware.h"

extern const nnscons_model_info_t pair_info;

#endif
