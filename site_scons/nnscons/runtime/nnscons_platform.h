/*
 * nnscons: what the shared Cortex-M startup (nnscons_startup_cortex_m.c) and the firmware runner need from the way
 * a target talks to the outside world. One file of a target's `startup` list implements them:
 *
 *   nnscons_semihosting.c   the MPS2/MPS3 targets: stdio, exit status and command line over semihosting
 *   nnscons_uart_stdio.c    the boards: stdio over the board's UART (the board file's nnscons_board_* functions),
 *                           no exit and no command line
 */
#ifndef NNSCONS_PLATFORM_H
#define NNSCONS_PLATFORM_H

#include <stdint.h>

/* Called by Reset_Handler after .data and .bss are set up, before main: makes stdio work. */
void nnscons_platform_init(void);

/* Called by the fault handlers: reports `message` (one line) and ends the program; does not return. */
void nnscons_platform_fault(const char *message) __attribute__((noreturn));

/* The program's command line into `buffer` (NUL-terminated, at most size - 1 characters); empty when there is
 * none. */
void nnscons_command_line(char *buffer, uint32_t size);

#endif
