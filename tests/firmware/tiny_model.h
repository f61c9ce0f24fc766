/* A hand-written stand-in for a generated model (tests/test_firmware.py): the same descriptor, no CMSIS-NN. */
#ifndef TINY_MODEL_H
#define TINY_MODEL_H

#define TINY_INPUT_SIZE 4
#define TINY_OUTPUT_SIZE 4
#define TINY_ACTIVATION_ARENA_SIZE 12u
#define TINY_ARENA_SIZE 16u

#endif
