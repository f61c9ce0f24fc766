/*
 * BBC micro:bit v1 (nRF51822-QFAA: Cortex-M0, 256 KB flash, 16 KB RAM): the clock set-up, a polled UART and a
 * timer for the cycle counter, for nnscons_uart_stdio.c and nnscons_cortex_m.c. Written from Nordic's "nRF51 Series
 * Reference Manual" v3.0 (chapters named in the comments) and the micro:bit's pin assignment (the interface chip's
 * serial port on P0.24/P0.25).
 *
 * Clock: the CPU runs from the 16 MHz HFCLK either way; starting the 16 MHz crystal oscillator (the micro:bit has
 * one; XTALFREQ's reset value says 16 MHz) makes the UART's baud rate and the timer exact. The wait is bounded.
 *
 * UART: 115200 baud 8N1 on TXD P0.24 / RXD P0.25, polled: clear EVENTS_TXDRDY, write TXD, wait for EVENTS_TXDRDY.
 * On the board it reaches the host through the interface chip's USB serial port; QEMU's microbit connects it to
 * its first serial port (-serial).
 *
 * Counter: the nRF51's Cortex-M0 has no SysTick (the core option is left out; QEMU models one anyway), so the
 * runner counts with TIMER0: 32 bits, prescaler 0, 16 MHz, read by a capture task. Its ticks convert to
 * instructions under QEMU -icount shift=0 exactly as SysTick's would (16 MHz: 62.5 instructions per tick).
 */
#include <stdint.h>
#include <stdio.h>

#define REG(address) (*(volatile uint32_t *)(address))

/* 13 Clock management (CLOCK), base 0x40000000 */
#define CLOCK_TASKS_HFCLKSTART REG(0x40000000u)
#define CLOCK_EVENTS_HFCLKSTARTED REG(0x40000100u)
#define CLOCK_HFCLKSTAT REG(0x4000040Cu)   /* SRC bit 0: 1 = the crystal oscillator */

/* 14 General purpose input/output (GPIO), base 0x50000000 */
#define GPIO_OUTSET REG(0x50000508u)
#define GPIO_PIN_CNF(pin) REG(0x50000700u + 4u * (pin))
#define PIN_CNF_OUTPUT 1u                  /* DIR bit 0: output */
#define PIN_CNF_INPUT_DISCONNECT 2u        /* INPUT bit 1: input buffer disconnected */

/* 29 Universal asynchronous receiver/transmitter (UART), UART0 at 0x40002000 */
#define UART_TASKS_STARTTX REG(0x40002008u)
#define UART_EVENTS_TXDRDY REG(0x4000211Cu)
#define UART_ENABLE REG(0x40002500u)
#define UART_ENABLE_ENABLED 4u
#define UART_PSELTXD REG(0x4000250Cu)
#define UART_PSELRXD REG(0x40002514u)
#define UART_TXD REG(0x4000251Cu)
#define UART_BAUDRATE REG(0x40002524u)
#define UART_BAUDRATE_115200 0x01D7E000u
#define UART_CONFIG REG(0x4000256Cu)       /* HWFC bit 0, PARITY bits 3:1: 0 = none */

/* 18 Timer/counter (TIMER), TIMER0 at 0x40008000 */
#define TIMER0_TASKS_START REG(0x40008000u)
#define TIMER0_TASKS_CLEAR REG(0x4000800Cu)
#define TIMER0_TASKS_CAPTURE0 REG(0x40008040u)
#define TIMER0_MODE REG(0x40008504u)       /* 0: timer */
#define TIMER0_BITMODE REG(0x40008508u)    /* 3: 32 bits */
#define TIMER0_PRESCALER REG(0x40008510u)  /* f = 16 MHz / 2^PRESCALER */
#define TIMER0_CC0 REG(0x40008540u)

#define TX_PIN 24u
#define RX_PIN 25u
#define HFCLK_WAIT 100000u                 /* polls; the crystal starts within ~1 ms (16 000 cycles) */

void nnscons_board_init(void);
void nnscons_board_putc(char c);
void nnscons_board_report(void);
uint32_t nnscons_board_counter_start(void);
uint32_t nnscons_board_counter_read(void);
const char *nnscons_board_counter_name(void);

static int crystal_running;

static void start_crystal(void)
{
    uint32_t polls;
    CLOCK_EVENTS_HFCLKSTARTED = 0;
    CLOCK_TASKS_HFCLKSTART = 1;
    for (polls = 0; polls < HFCLK_WAIT && CLOCK_EVENTS_HFCLKSTARTED == 0u; polls++) {
    }
    crystal_running = (CLOCK_HFCLKSTAT & 1u) != 0u;
}

void nnscons_board_init(void)
{
    start_crystal();
    GPIO_OUTSET = 1u << TX_PIN;         /* TXD idles high: set the level before the pin drives */
    GPIO_PIN_CNF(TX_PIN) = PIN_CNF_OUTPUT | PIN_CNF_INPUT_DISCONNECT;
    GPIO_PIN_CNF(RX_PIN) = 0u;          /* input, buffer connected, no pull */
    UART_PSELTXD = TX_PIN;
    UART_PSELRXD = RX_PIN;
    UART_BAUDRATE = UART_BAUDRATE_115200;
    UART_CONFIG = 0u;
    UART_ENABLE = UART_ENABLE_ENABLED;
    UART_TASKS_STARTTX = 1;
}

void nnscons_board_putc(char c)
{
    UART_EVENTS_TXDRDY = 0;
    UART_TXD = (uint8_t)c;
    while (UART_EVENTS_TXDRDY == 0u) {
    }
}

void nnscons_board_report(void)
{
    printf("nnscons board name=microbit clock=%s uart=uart0 baud=115200\n",
           crystal_running ? "hfxo-16MHz" : "hfint-16MHz");
}

uint32_t nnscons_board_counter_start(void)
{
    TIMER0_MODE = 0u;
    TIMER0_BITMODE = 3u;
    TIMER0_PRESCALER = 0u;
    TIMER0_TASKS_CLEAR = 1;
    TIMER0_TASKS_START = 1;
    return 16000000u;
}

uint32_t nnscons_board_counter_read(void)
{
    TIMER0_TASKS_CAPTURE0 = 1;
    return TIMER0_CC0;
}

const char *nnscons_board_counter_name(void)
{
    return "timer0";
}
