/*
 * nnscons platform for a board (nnscons_platform.h): no semihosting, no debugger needed. stdout and stderr go to
 * the board's UART through newlib's system calls (newlib-nano, --specs=nano.specs; libnosys, --specs=nosys.specs,
 * covers the calls the runner never makes); the board file provides
 *
 *     void nnscons_board_init(void)     clocks, pins and the UART (polled, no interrupts)
 *     void nnscons_board_putc(char c)   one byte out, waiting until the UART took it
 *     void nnscons_board_report(void)   prints one `nnscons board ...` line (what the set-up got), once stdio works
 *
 * There is nothing to exit to: exit() ends in _exit, which prints `nnscons exit status=<main's return value>` and
 * parks the core (the run in QEMU is stopped by whoever reads the UART, once it has seen `nnscons done`, an error
 * line or that last line). A fault prints its line and parks the core
 * too. A board has no command line: every model of the image runs. The heap (malloc, for printf's number
 * conversion) lies between the linker symbols `end` and `__heap_end__`; _sbrk refuses to grow past it.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "nnscons_platform.h"

#define STDOUT_BUFFER_SIZE 128  /* a line buffer without malloc (the runner's lines are printed in pieces) */
#define EXIT_LINE "nnscons exit status="   /* the last line of every run, then main's return value */

void nnscons_board_init(void);
void nnscons_board_putc(char c);
void nnscons_board_report(void);

int _write(int file, const char *data, int length);
int _read(int file, char *data, int length);
int _close(int file);
int _fstat(int file, struct stat *st);
int _isatty(int file);
int _lseek(int file, int offset, int whence);
void *_sbrk(ptrdiff_t increment);
void _exit(int status) __attribute__((noreturn));

extern char end[], __heap_end__[];  /* nnscons_cortex_m_sections.ld */

static char stdout_buffer[STDOUT_BUFFER_SIZE];
static char *heap_top = end;

static void uart_write(const char *data, size_t length)
{
    size_t i;
    for (i = 0; i < length; i++) {
        if (data[i] == '\n') {
            nnscons_board_putc('\r');   /* serial terminals expect CR LF */
        }
        nnscons_board_putc(data[i]);
    }
}

static void park(void) __attribute__((noreturn));
static void park(void)
{
    for (;;) {
        __asm volatile("wfi");
    }
}

void nnscons_platform_init(void)
{
    nnscons_board_init();
    setvbuf(stdout, stdout_buffer, _IOLBF, sizeof stdout_buffer);
    nnscons_board_report();
}

void nnscons_platform_fault(const char *message)
{
    uart_write(message, strlen(message));
    park();
}

void nnscons_command_line(char *buffer, uint32_t size)
{
    (void)size;
    buffer[0] = '\0';
}

int _write(int file, const char *data, int length)
{
    if (file != 1 && file != 2) {
        errno = EBADF;
        return -1;
    }
    uart_write(data, (size_t)length);
    return length;
}

int _read(int file, char *data, int length)
{
    (void)file;
    (void)data;
    (void)length;
    return 0;   /* no input: end of file */
}

int _close(int file)
{
    (void)file;
    return 0;
}

int _fstat(int file, struct stat *st)
{
    (void)file;
    st->st_mode = S_IFCHR;
    return 0;
}

int _isatty(int file)
{
    return file >= 0 && file <= 2;
}

int _lseek(int file, int offset, int whence)
{
    (void)file;
    (void)offset;
    (void)whence;
    return 0;
}

void *_sbrk(ptrdiff_t increment)
{
    char *previous = heap_top;
    if (increment > __heap_end__ - heap_top || increment < end - heap_top) {
        errno = ENOMEM;
        return (void *)-1;
    }
    heap_top += increment;
    return previous;
}

/* The end of a program: one last line with main's return value (exit() has flushed stdio), which whoever reads
 * the UART takes as the exit status (nnscons.firmware.qemu), then the core parks. */
void _exit(int status)
{
    static const char digits[] = "0123456789";
    char text[sizeof EXIT_LINE + 12];
    unsigned long magnitude = status < 0 ? 0ul - (unsigned long)status : (unsigned long)status;
    char *at = text + sizeof text;
    *--at = '\n';
    do {
        *--at = digits[magnitude % 10u];
        magnitude /= 10u;
    } while (magnitude != 0u);
    if (status < 0) {
        *--at = '-';
    }
    uart_write(EXIT_LINE, sizeof EXIT_LINE - 1u);
    uart_write(at, (size_t)(text + sizeof text - at));
    park();
}
