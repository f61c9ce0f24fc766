/*
 * Classifies four handwritten digits (8x8 images from scikit-learn's digits, pixels 0..16) with the model "digits"
 * that nnscons generates from models/digits/model.onnx, and prints each one's class and probability.
 * The same file builds for this machine and for a board (scons target=m4 run).
 */
#include <stdio.h>

#include "digits.h"     /* the generated C API: digits_invoke(), DIGITS_INPUT_SIZE, ... */

#define IMAGES 4

/* Four test images of the model: 8x8 pixels, one character each (0..9, a..g for 0..16) */
static const char images[IMAGES][8][9] = {
    {"009f5000", "03ffg400", "0ae09e00", "08c00c50",
     "08800a80", "05e00c80", "00g7cg40", "009gf700"},
    {"007a0000", "009g0000", "006g5000", "009g9000",
     "0006e100", "0002g400", "0014ec41", "007gggg5"},
    {"01ff2000", "07ed9000", "0996d000", "0108c000",
     "0008c000", "000b6000", "007ggg70", "00gfcc30"},
    {"0001e500", "000bb000", "009c1000", "05f10240",
     "0e700da0", "0fgggg50", "0388fa00", "0003f200"},
};
static const int labels[IMAGES] = {0, 1, 2, 4};

/* The index of the largest of count values. */
static int top(const float *values, int count)
{
    int best = 0;
    for (int i = 1; i < count; i++) {
        best = values[i] > values[best] ? i : best;
    }
    return best;
}

int main(void)
{
    static float x[DIGITS_INPUT_SIZE], probabilities[DIGITS_OUTPUT_SIZE];
    static digits_input_t input[DIGITS_INPUT_SIZE];
    static digits_output_t output[DIGITS_OUTPUT_SIZE];
    int correct = 0;

    for (int image = 0; image < IMAGES; image++) {
        for (int i = 0; i < DIGITS_INPUT_SIZE; i++) {
            char c = images[image][i / 8][i % 8];
            x[i] = (c <= '9' ? c - '0' : c - 'a' + 10) / 16.0f;     /* the model was trained on pixels / 16 */
        }
        digits_quantize_input(x, input, DIGITS_INPUT_SIZE);             /* real values -> the model's int8 */
        if (digits_invoke(input, output) != 0) {
            printf("digits_invoke failed\n");
            return 1;
        }
        digits_dequantize_output(output, probabilities, DIGITS_OUTPUT_SIZE);    /* int8 -> probabilities */
        int digit = top(probabilities, DIGITS_OUTPUT_SIZE);
        printf("image %d: digit %d (p = %.3f), labelled %d\n", image, digit, probabilities[digit], labels[image]);
        correct += digit == labels[image];
    }
    printf("%d of %d as labelled (model %s, arena %u bytes)\n", correct, IMAGES, DIGITS_HASH,
           (unsigned)DIGITS_ARENA_SIZE);
    return correct == IMAGES ? 0 : 1;
}
