/*
 * Startup shared by the Cortex-M targets of targets/ (a target.toml without a `startup` key uses it; a board that
 * brings its own startup lists it there instead). What differs between the cores follows from the compiler's
 * architecture macros, i.e. from -mcpu:
 *   ARMv6-M (Cortex-M0)             HardFault only; no configurable fault exceptions
 *   ARMv7-M (Cortex-M3, M4, M7)     MemManage, BusFault and UsageFault vectors
 *   ARMv8-M Mainline (M33, M55)     also SecureFault, and the hardware stack limit (MSPLIM)
 *   an FPU (__ARM_FP)               CP10/CP11 enabled before any floating-point instruction (also enables MVE)
 *
 * The vector table sits at the start of the CODE region, where the core reads its initial stack pointer and reset
 * vector. Reset_Handler sets the stack limit where there is one, enables the FPU where there is one, copies .data
 * from its load address, zeroes .bss, sets up stdio (nnscons_platform_init), calls main and ends the program with
 * exit(main's return value). A fault reports one line and ends the program (nnscons_platform_fault), so a crashed
 * run ends by itself. How stdio, exit and faults reach the outside world is the platform file's business
 * (nnscons_platform.h: semihosting on the MPS2/MPS3 targets, a UART on the boards). The symbols come from the linker
 * script (nnscons_cortex_m_sections.ld).
 */
#include <stdint.h>
#include <stdlib.h>

#include "nnscons_platform.h"

#if defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
#define NNSCONS_ARMV8M_MAIN 1
#endif
#if !defined(__ARM_ARCH_6M__) && !defined(__ARM_ARCH_8M_BASE__)
#define NNSCONS_CONFIGURABLE_FAULTS 1   /* MemManage, BusFault, UsageFault, DebugMonitor */
#endif

extern uint32_t __data_load__[], __data_start__[], __data_end__[], __bss_start__[], __bss_end__[];
extern uint32_t __stack_top__[], __stack_limit__[];

extern int main(void);

void Reset_Handler(void);
void Fault_Handler(void);
void Default_Handler(void);
void NMI_Handler(void) __attribute__((weak, alias("Fault_Handler")));
void HardFault_Handler(void) __attribute__((weak, alias("Fault_Handler")));
#ifdef NNSCONS_CONFIGURABLE_FAULTS
void MemManage_Handler(void) __attribute__((weak, alias("Fault_Handler")));
void BusFault_Handler(void) __attribute__((weak, alias("Fault_Handler")));
void UsageFault_Handler(void) __attribute__((weak, alias("Fault_Handler")));
void DebugMon_Handler(void) __attribute__((weak, alias("Default_Handler")));
#define NNSCONS_VECTOR(fn) {.handler = fn}
#else
#define NNSCONS_VECTOR(fn) {.handler = 0}
#endif
#ifdef NNSCONS_ARMV8M_MAIN
void SecureFault_Handler(void) __attribute__((weak, alias("Fault_Handler")));
#endif
void SVC_Handler(void) __attribute__((weak, alias("Default_Handler")));
void PendSV_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SysTick_Handler(void) __attribute__((weak, alias("Default_Handler")));

typedef union {
    void (*handler)(void);
    void *stack_top;
} vector_t;

/* The 16 system exceptions; no peripheral interrupt is enabled, so the table stops there. */
__attribute__((section(".vectors"), used)) const vector_t vector_table[16] = {
    {.stack_top = __stack_top__},
    {.handler = Reset_Handler},
    {.handler = NMI_Handler},
    {.handler = HardFault_Handler},
    NNSCONS_VECTOR(MemManage_Handler),
    NNSCONS_VECTOR(BusFault_Handler),
    NNSCONS_VECTOR(UsageFault_Handler),
#ifdef NNSCONS_ARMV8M_MAIN
    {.handler = SecureFault_Handler},
#else
    {.handler = 0},
#endif
    {.handler = 0},
    {.handler = 0},
    {.handler = 0},
    {.handler = SVC_Handler},
    NNSCONS_VECTOR(DebugMon_Handler),
    {.handler = 0},
    {.handler = PendSV_Handler},
    {.handler = SysTick_Handler},
};

#ifdef __ARM_FP
#define CPACR (*(volatile uint32_t *)0xE000ED88u)
#define CPACR_CP10_CP11_FULL (0xFu << 20)

/* Before any floating-point instruction: the compiler may use FP registers anywhere after this. */
static void enable_fpu(void)
{
    CPACR |= CPACR_CP10_CP11_FULL;
    __asm volatile("dsb\n\tisb" ::: "memory");
}
#endif

#ifdef NNSCONS_ARMV8M_MAIN
/* ARMv8-M checks the stack limit in hardware: an overflow becomes a UsageFault instead of corrupting .bss. */
static void set_stack_limit(void)
{
    __asm volatile("msr msplim, %0" : : "r"(__stack_limit__));
}
#endif

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
#ifdef NNSCONS_ARMV8M_MAIN
    set_stack_limit();
#endif
#ifdef __ARM_FP
    enable_fpu();
#endif
    init_memory();
    nnscons_platform_init();
    exit(main());
}

void Fault_Handler(void)
{
    nnscons_platform_fault("nnscons error fault: the processor took a fault exception\n");
}

void Default_Handler(void)
{
    nnscons_platform_fault("nnscons error fault: unexpected exception\n");
}
