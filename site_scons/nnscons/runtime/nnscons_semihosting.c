/*
 * nnscons platform over Arm semihosting (nnscons_platform.h), for the MPS2/MPS3 targets QEMU runs with
 * `-semihosting-config enable=on,target=native`: newlib's librdimon (--specs=rdimon.specs) carries stdio and exit,
 * this file the rest. A semihosting call is `bkpt 0xAB` with the operation in r0 and its argument block in r1
 * (Arm, "Semihosting for AArch32 and AArch64", version 3.0).
 */
#include <stdint.h>

#include "nnscons_platform.h"

#define SYS_WRITE0 0x04u
#define SYS_GET_CMDLINE 0x15u
#define SYS_EXIT 0x18u
#define ADP_STOPPED_RUN_TIME_ERROR 0x20023u

extern void initialise_monitor_handles(void);   /* newlib's librdimon: stdin/stdout/stderr over semihosting */

static uint32_t semihosting(uint32_t op, void *arg)
{
    register uint32_t r0 __asm("r0") = op;
    register void *r1 __asm("r1") = arg;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void nnscons_platform_init(void)
{
    initialise_monitor_handles();
}

void nnscons_platform_fault(const char *message)
{
    semihosting(SYS_WRITE0, (void *)message);
    semihosting(SYS_EXIT, (void *)ADP_STOPPED_RUN_TIME_ERROR);
    for (;;) {
    }
}

/* QEMU: the kernel path, then -append's text */
void nnscons_command_line(char *buffer, uint32_t size)
{
    struct {
        char *buffer;
        uint32_t size;
    } block;
    block.buffer = buffer;
    block.size = size;
    buffer[0] = '\0';
    if (semihosting(SYS_GET_CMDLINE, &block) != 0u) {
        buffer[0] = '\0';
    }
    buffer[size - 1] = '\0';
}
