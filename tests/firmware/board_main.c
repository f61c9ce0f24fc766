/*
 * A program for the boards' link (tests/test_boards.py): floats through printf (newlib-nano prints them only when
 * the link asks for _printf_float), then `nnscons done`, or with BOARD_FAULT a jump to nowhere (the board's fault
 * handler prints `nnscons error fault ...` on the UART), or with BOARD_STATUS=n no `nnscons done` but main returning
 * n (the board's _exit prints `nnscons exit status=n`).
 */
#include <stdint.h>
#include <stdio.h>

int main(void)
{
    volatile float third = 1.0f / 3.0f;
    volatile double big = 6.02214076e23;
    printf("board float=%.4f double=%.3e\n", (double)third, big);
#ifdef BOARD_FAULT
    {
        void (*nowhere)(void) = (void (*)(void))(uintptr_t)0xFFFFFFF0u;
        nowhere();
    }
#endif
#ifdef BOARD_STATUS
    return BOARD_STATUS;
#else
    puts("nnscons done");
    return 0;
#endif
}
