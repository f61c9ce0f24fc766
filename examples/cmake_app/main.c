/*
 * nnscons CMake example: classify four handwritten digits (8x8 images from scikit-learn's digits, pixels 0..16)
 * with the model library "digits" that nnscons_add_model() generates from models/digits_cnn.
 * Prints one line per image and the hash of the model and options the code was generated from.
 */
#include <stdio.h>

#include "digits.h"

#define IMAGES 4

static const unsigned char images[IMAGES][DIGITS_INPUT_SIZE] = {
    {0, 0, 2, 13, 16, 9, 0, 0, 0, 0, 12, 12, 7, 16, 3, 0, 0, 1, 14, 3, 0, 16, 4, 0, 0, 0, 0, 4, 10, 16, 6, 0,
     0, 0, 0, 13, 16, 16, 9, 0, 0, 0, 0, 5, 13, 1, 0, 0, 0, 0, 0, 11, 9, 0, 0, 0, 0, 0, 1, 16, 4, 0, 0, 0},
    {0, 0, 4, 14, 6, 0, 0, 0, 0, 0, 10, 15, 2, 0, 0, 0, 0, 0, 16, 11, 0, 0, 0, 0, 0, 0, 13, 11, 0, 0, 0, 0,
     0, 3, 16, 12, 8, 3, 0, 0, 0, 2, 16, 14, 8, 12, 9, 0, 0, 0, 16, 13, 4, 12, 12, 0, 0, 0, 6, 15, 16, 12, 1, 0},
    {0, 0, 6, 14, 16, 16, 2, 0, 0, 5, 16, 13, 11, 16, 0, 0, 0, 0, 7, 2, 15, 12, 0, 0, 0, 0, 0, 7, 16, 13, 1, 0,
     0, 0, 0, 0, 6, 15, 10, 0, 0, 0, 0, 0, 0, 15, 9, 0, 0, 0, 3, 11, 8, 16, 6, 0, 0, 0, 7, 16, 16, 8, 0, 0},
    {0, 0, 3, 15, 16, 15, 1, 0, 0, 0, 9, 11, 9, 16, 3, 0, 0, 0, 1, 0, 3, 16, 3, 0, 0, 0, 0, 0, 9, 14, 0, 0,
     0, 0, 4, 15, 15, 16, 6, 0, 0, 0, 2, 12, 15, 7, 1, 0, 0, 0, 0, 13, 8, 0, 0, 0, 0, 0, 4, 14, 1, 0, 0, 0},
};
static const int labels[IMAGES] = {7, 6, 3, 7};

static int classify(const unsigned char *pixels)
{
    float x[DIGITS_INPUT_SIZE];
    digits_input_t input[DIGITS_INPUT_SIZE];
    digits_output_t scores[DIGITS_OUTPUT_SIZE];
    int best = 0;

    for (int i = 0; i < DIGITS_INPUT_SIZE; i++) {
        x[i] = pixels[i] / 16.0f;   /* the model was trained on pixels / 16 */
    }
    digits_quantize_input(x, input, DIGITS_INPUT_SIZE);
    if (digits_invoke(input, scores) != 0) {
        return -1;
    }
    for (int i = 1; i < DIGITS_OUTPUT_SIZE; i++) {
        if (scores[i] > scores[best]) {
            best = i;
        }
    }
    return best;
}

int main(void)
{
    int correct = 0;
    for (int i = 0; i < IMAGES; i++) {
        int digit = classify(images[i]);
        if (digit < 0) {
            printf("cmake_app: digits_invoke failed\n");
            return 1;
        }
        printf("image %d: class %d (label %d)\n", i, digit, labels[i]);
        correct += digit == labels[i];
    }
    printf("cmake_app: %d of %d as labelled, model %s\n", correct, IMAGES, DIGITS_HASH);
    return 0;
}
