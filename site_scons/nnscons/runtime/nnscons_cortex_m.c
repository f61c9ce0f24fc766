/*
 * nnscons firmware runner: what it needs from any Cortex-M core (ARMv6-M, ARMv7-M, ARMv8-M), independent of the
 * board.
 *
 * Counter: nnscons_counter_start picks, once, the first of these that counts:
 *
 *   dwt      DWT->CYCCNT, the core's cycle counter (ARMv7-M and ARMv8-M Mainline, where the implementation has it:
 *            tried at run time, since QEMU models no DWT and a core may lack CYCCNT). Counts cycles.
 *   <board>  a timer of the board (nnscons_board_counter_start returns its frequency; the default returns 0): for
 *            a chip without SysTick, such as the nRF51. A clock, like SysTick.
 *   systick  SysTick, counting the processor clock (NNSCONS_CLOCK_HZ).
 *
 * SysTick counts down from a 24-bit reload value R to 0 and reloads; an interrupt when it reaches 0 extends it to
 * 64 bits. The value 0 lasts one tick, after the interrupt: at that point the period is not yet over, so the elapsed
 * count is the wraps times (R + 1), minus one tick. A 32-bit up-counter (dwt, a board timer) is extended in
 * software: each read that sees it lower than the last adds 2^32, and with DWT the SysTick interrupt (every 2^24
 * cycles) reads it too, so no wrap goes unseen; a board timer is read at least at the start and end of each
 * inference, which must be shorter than one wrap (2^32 ticks: 268 s at 16 MHz).
 *
 * QEMU models no cycles, but with `-icount shift=0` every instruction takes 1 ns of virtual time, so a clock's
 * ticks * 1e9 / f_clock is the number of instructions executed, deterministically (the resolution is 1e9 / f_clock
 * instructions, 40 at 25 MHz). A measurement starts at a tick edge (nnscons_counter_sync), so where the tick falls
 * does not depend on the code that ran before. On hardware a clock's count is wall-clock time.
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

#if defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__) || defined(__ARM_ARCH_8M_MAIN__) || \
    defined(__ARM_ARCH_8_1M_MAIN__)
#define NNSCONS_HAS_DWT 1
/* Armv7-M Architecture Reference Manual (DDI 0403E): C1.6.5 DEMCR (TRCENA, bit 24, powers the DWT); C1.8.7
 * DWT_CTRL (CYCCNTENA bit 0; NOCYCCNT bit 25: no cycle counter); C1.8.8 DWT_CYCCNT. Armv8-M keeps the addresses. */
#define DEMCR (*(volatile uint32_t *)0xE000EDFCu)
#define DEMCR_TRCENA (1u << 24)
#define DWT_CTRL (*(volatile uint32_t *)0xE0001000u)
#define DWT_CTRL_CYCCNTENA 1u
#define DWT_CTRL_NOCYCCNT (1u << 25)
#define DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)
#endif

#ifndef NNSCONS_CLOCK_HZ
#error "compile with -DNNSCONS_CLOCK_HZ=<the processor clock in Hz>"
#endif

#define STACK_PAINT 0xC5A1C5A1u
#define STACK_PAINT_MARGIN 64u      /* bytes below the current stack pointer left alone while painting */

extern uint32_t __stack_limit__[];
extern uint32_t __stack_top__[];

enum counter_kind { COUNTER_SYSTICK, COUNTER_DWT, COUNTER_BOARD };

static volatile uint32_t systick_wraps;
static enum counter_kind counter = COUNTER_SYSTICK;
static uint32_t counter_hz = NNSCONS_CLOCK_HZ;     /* the clock a SysTick or board count is converted with */
static volatile uint32_t up_high, up_last;          /* the software extension of a 32-bit up-counter */

/* A board without SysTick brings a timer (nnscons_firmware.h); by default there is none. */
__attribute__((weak)) uint32_t nnscons_board_counter_start(void)
{
    return 0;
}

__attribute__((weak)) uint32_t nnscons_board_counter_read(void)
{
    return 0;
}

__attribute__((weak)) const char *nnscons_board_counter_name(void)
{
    return "board";
}

static uint32_t up_read(void)
{
#ifdef NNSCONS_HAS_DWT
    if (counter == COUNTER_DWT) {
        return DWT_CYCCNT;
    }
#endif
    return nnscons_board_counter_read();
}

/* The 64-bit count of an up-counter; called with interrupts masked or from the SysTick interrupt. */
static uint64_t up_extend(void)
{
    uint32_t now = up_read();
    if (now < up_last) {
        up_high++;
    }
    up_last = now;
    return ((uint64_t)up_high << 32) | now;
}

void SysTick_Handler(void)
{
    systick_wraps++;
    if (counter == COUNTER_DWT) {
        (void)up_extend();
    }
}

#ifdef NNSCONS_HAS_DWT
/* Whether DWT_CYCCNT exists and moves once enabled (it reads 0 where nothing implements it, as in QEMU). */
static int dwt_counts(void)
{
    uint32_t before;
    volatile uint32_t spin;
    DEMCR |= DEMCR_TRCENA;
    if ((DWT_CTRL & DWT_CTRL_NOCYCCNT) != 0u) {
        return 0;
    }
    DWT_CYCCNT = 0;
    DWT_CTRL |= DWT_CTRL_CYCCNTENA;
    before = DWT_CYCCNT;
    for (spin = 0; spin < 16u; spin++) {
    }
    return DWT_CYCCNT != before;
}
#endif

static void systick_start(void)
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

void nnscons_counter_start(void)
{
    uint32_t board_hz;
#ifdef NNSCONS_HAS_DWT
    if (dwt_counts()) {
        counter = COUNTER_DWT;
        up_high = 0;
        up_last = DWT_CYCCNT;
        systick_start();    /* its interrupt reads the cycle counter often enough to see every wrap */
        return;
    }
#endif
    board_hz = nnscons_board_counter_start();
    if (board_hz != 0u) {
        counter = COUNTER_BOARD;
        counter_hz = board_hz;
        up_high = 0;
        up_last = nnscons_board_counter_read();
        return;
    }
    systick_start();
}

const char *nnscons_counter_name(void)
{
    return counter == COUNTER_DWT ? "dwt" : counter == COUNTER_BOARD ? nnscons_board_counter_name() : "systick";
}

const char *nnscons_counter_unit(void)
{
    return counter == COUNTER_DWT ? "cycles" : "instructions";
}

uint64_t nnscons_counter_value(uint64_t ticks)
{
    return counter == COUNTER_DWT ? ticks : ticks * 1000000000u / (uint64_t)counter_hz;
}

__attribute__((noinline)) static uint64_t up_ticks(void)
{
    uint32_t primask;
    uint64_t ticks;
    __asm volatile("mrs %0, primask" : "=r"(primask));
    __asm volatile("cpsid i" ::: "memory");
    ticks = up_extend();
    __asm volatile("msr primask, %0" : : "r"(primask) : "memory");
    return ticks;
}

/* SysTick's 64-bit count */
static inline uint64_t systick_ticks(void)
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

/* A SysTick measurement runs the instructions it ran before there were other counters, so its figures stay as
 * they were, to the tick: the counter is tested after SysTick is read (the end of a measurement), and the start
 * (nnscons_counter_sync) tests it before waiting for the tick edge. With another counter the value read is
 * discarded (on a chip without SysTick, the nRF51, the read touches SysTick's reserved System Control Space
 * words). */
uint64_t nnscons_counter_ticks(void)
{
    const uint64_t ticks = systick_ticks();
    if (counter != COUNTER_SYSTICK) {
        return up_ticks();
    }
    return ticks;
}

__attribute__((noinline)) static uint64_t up_sync(void)
{
    const uint64_t first = up_ticks();
    uint64_t now;
    do {
        now = up_ticks();
    } while (now == first);
    return now;
}

uint64_t nnscons_counter_sync(void)
{
    uint32_t current;
    if (counter != COUNTER_SYSTICK) {
        return up_sync();
    }
    current = SYST_CVR;
    while (SYST_CVR == current) {
    }
    return systick_ticks();
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
