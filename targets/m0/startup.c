/*
 * Startup for the m0 target: Cortex-M0 code (ARMv6-M) on QEMU's mps2-an385 board, whose Cortex-M3 runs it
 * (see target.toml).
 *
 * The vector table sits at the start of the CODE region, where the core reads its initial stack pointer and reset
 * vector. Reset_Handler copies .data from its load address, zeroes .bss, opens newlib's semihosting stdio, calls
 * main and ends the program through semihosting with main's return value as the emulator's exit status. A fault
 * prints one line and exits with status 1, so a crashed run ends by itself. The symbols come from the linker script
 * (nnscons_cortex_m_sections.ld).
 */
#include <stdint.h>
#include <stdlib.h>

extern uint32_t __data_load__[], __data_start__[], __data_end__[], __bss_start__[], __bss_end__[];
extern uint32_t __stack_top__[];

extern int main(void);
extern void initialise_monitor_handles(void);   /* newlib's librdimon: stdin/stdout/stderr over semihosting */

void Reset_Handler(void);
void Fault_Handler(void);
void Default_Handler(void);
void NMI_Handler(void) __attribute__((weak, alias("Fault_Handler")));
void HardFault_Handler(void) __attribute__((weak, alias("Fault_Handler")));
void SVC_Handler(void) __attribute__((weak, alias("Default_Handler")));
void PendSV_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SysTick_Handler(void) __attribute__((weak, alias("Default_Handler")));

typedef union {
    void (*handler)(void);
    void *stack_top;
} vector_t;

/* The 16 system exceptions of ARMv6-M; no peripheral interrupt is enabled, so the table stops there. */
__attribute__((section(".vectors"), used)) const vector_t vector_table[16] = {
    {.stack_top = __stack_top__},
    {.handler = Reset_Handler},
    {.handler = NMI_Handler},
    {.handler = HardFault_Handler},
    {.handler = 0},
    {.handler = 0},
    {.handler = 0},
    {.handler = 0},
    {.handler = 0},
    {.handler = 0},
    {.handler = 0},
    {.handler = SVC_Handler},
    {.handler = 0},
    {.handler = 0},
    {.handler = PendSV_Handler},
    {.handler = SysTick_Handler},
};

#define SYS_WRITE0 0x04u
#define SYS_EXIT 0x18u
#define ADP_STOPPED_RUN_TIME_ERROR 0x20023u

static uint32_t semihosting(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm("r0") = op;
    register const void *r1 __asm("r1") = arg;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

__attribute__((noinline)) static void init_memory(void)
{
    uint32_t *from = __data_load__, *to = __data_start__;
    while (to < __data_end__) {
        *to++ = *from++;
    }
    for (to = __bss_start__; to < __bss_end__; to++) {
        *to = 0;
    }
}

void Reset_Handler(void)
{
    init_memory();
    initialise_monitor_handles();
    exit(main());
}

void Fault_Handler(void)
{
    semihosting(SYS_WRITE0, "nnscons error fault: the processor took a fault exception\n");
    semihosting(SYS_EXIT, (const void *)ADP_STOPPED_RUN_TIME_ERROR);
    for (;;) {
    }
}

void Default_Handler(void)
{
    semihosting(SYS_WRITE0, "nnscons error fault: unexpected exception\n");
    semihosting(SYS_EXIT, (const void *)ADP_STOPPED_RUN_TIME_ERROR);
    for (;;) {
    }
}
