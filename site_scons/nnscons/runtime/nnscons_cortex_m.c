/*
 * nnscons firmware runner: what it needs from any Cortex-M core (ARMv6-M, ARMv7-M, ARMv8-M), independent of the
 * board.
 *
 * Counter: SysTick counts processor clock ticks down from a 24-bit reload value R to 0 and reloads; an interrupt
 * when it reaches 0 extends it to 64 bits. The value 0 lasts one tick, after the interrupt: at that point the
 * period is not yet over, so the elapsed count is the wraps times (R + 1), minus one tick. QEMU models no cycles, but with `-icount shift=0` every instruction takes 1 ns of
 * virtual time, so ticks * 1e9 / f_clock is the number of instructions executed, deterministically (the
 * resolution is 1e9 / f_clock instructions, 40 at 25 MHz). A measurement starts at a tick edge
 * (nnscons_counter_sync), so where the tick falls does not depend on the code that ran before. On hardware the
 * count is wall-clock cycles.
 *
 * Stack: the unused part of the stack is painted with a pattern; the lowest word no longer holding it marks the
 * deepest the stack has been since. The linker script provides __stack_limit__ and __stack_top__.
 */
#include <stdint.h>

#include "nnscons_firmware.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)    /* control and status */
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)    /* reload value */
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)    /* current value */
#define SYST_CSR_ENABLE 1u
#define SYST_CSR_TICKINT 2u
#define SYST_CSR_CLKSOURCE_CPU 4u
#define SYSTICK_RELOAD 0x00FFFFFFu

#define STACK_PAINT 0xC5A1C5A1u
#define STACK_PAINT_MARGIN 64u      /* bytes below the current stack pointer left alone while painting */

extern uint32_t __stack_limit__[];
extern uint32_t __stack_top__[];

static volatile uint32_t systick_wraps;

void SysTick_Handler(void)
{
    systick_wraps++;
}

void nnscons_counter_start(void)
{
    SYST_CSR = 0;
    systick_wraps = 0;
    SYST_RVR = SYSTICK_RELOAD;
    SYST_CVR = 0;   /* any write clears the counter; it loads R at the next tick, without an interrupt */
    SYST_CSR = SYST_CSR_ENABLE | SYST_CSR_TICKINT | SYST_CSR_CLKSOURCE_CPU;
    while (SYST_CVR == 0) {
    }
    systick_wraps = 0;  /* count from the first reload */
}

uint64_t nnscons_counter_ticks(void)
{
    uint32_t wraps, current;
    do {    /* a wrap between the two reads is seen as a changed wrap count: read again */
        wraps = systick_wraps;
        current = SYST_CVR;
    } while (wraps != systick_wraps);
    if (current == 0) {
        return (uint64_t)wraps * (SYSTICK_RELOAD + 1u) - 1u;
    }
    return (uint64_t)wraps * (SYSTICK_RELOAD + 1u) + (SYSTICK_RELOAD - current);
}

uint64_t nnscons_counter_sync(void)
{
    uint32_t current = SYST_CVR;
    while (SYST_CVR == current) {
    }
    return nnscons_counter_ticks();
}

static uintptr_t stack_pointer(void)
{
    uintptr_t sp;
    __asm volatile("mov %0, sp" : "=r"(sp));
    return sp;
}

void nnscons_stack_paint(void)
{
    volatile uint32_t *word = __stack_limit__;
    uintptr_t stop = stack_pointer() - STACK_PAINT_MARGIN;
    while ((uintptr_t)word < stop) {
        *word++ = STACK_PAINT;
    }
}

uint32_t nnscons_stack_peak(void)
{
    const volatile uint32_t *word = __stack_limit__;
    while (word < __stack_top__ && *word == STACK_PAINT) {
        word++;
    }
    return (uint32_t)((uintptr_t)__stack_top__ - (uintptr_t)word);
}
