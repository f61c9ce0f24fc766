/*
 * Netduino Plus 2 (STM32F405RG: Cortex-M4F, 1 MB flash, 192 KB RAM): the clock set-up and a polled USART, for
 * nnscons_uart_stdio.c (the runner's stdout). Written from ST's RM0090 reference manual (Rev 19, "STM32F405/415,
 * STM32F407/417, STM32F427/437 and STM32F429/439"), whose sections the comments name, and the STM32F405xx datasheet
 * (DS8626) for the pins' alternate functions.
 *
 * Clock: the PLL from the internal 16 MHz HSI oscillator (no crystal needed) to 168 MHz, the part's maximum:
 * 16 MHz / M 8 = 2 MHz into the VCO (1..2 MHz allowed), x N 168 = 336 MHz, / P 2 = 168 MHz SYSCLK, / Q 7 = 48 MHz
 * for USB. AHB at 168 MHz, APB1 / 4 = 42 MHz, APB2 / 2 = 84 MHz (the buses' maxima), flash at 5 wait states with
 * prefetch and caches. The waits for the PLL are bounded: a part whose PLL does not lock (or QEMU, which models no
 * RCC: its registers read 0) keeps running on the HSI, and the UART's baud rate divider follows the clock it got.
 *
 * UART: USART1, 115200 baud 8N1, TX on PA9 and RX on PA10 (alternate function 7), polled (no interrupt). QEMU's
 * netduinoplus2 connects USART1 to its first serial port (-serial). On the board, connect a 3.3 V serial adapter to
 * PA9/PA10 and GND (see targets/netduinoplus2/README.md).
 */
#include <stdint.h>
#include <stdio.h>

#define REG(address) (*(volatile uint32_t *)(address))

/* RM0090 2.3 (memory map, Table 1): RCC at 0x40023800, the flash interface at 0x40023C00, GPIOA at 0x40020000,
 * USART1 at 0x40011000. */
#define RCC_CR REG(0x40023800u)            /* 7.3.1 */
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)
/* 7.3.2: PLLM 5:0, PLLN 14:6, PLLP 17:16 (0: /2), PLLSRC 22 (0: HSI), PLLQ 27:24 */
#define RCC_PLLCFGR REG(0x40023804u)
#define PLLCFGR_168MHZ_FROM_HSI ((8u << 0) | (168u << 6) | (0u << 16) | (0u << 22) | (7u << 24))
#define RCC_CFGR REG(0x40023808u)          /* 7.3.3: SW 1:0, SWS 3:2, HPRE 7:4, PPRE1 12:10, PPRE2 15:13 */
#define CFGR_SW_MASK 3u
#define CFGR_SW_PLL 2u
#define CFGR_SWS_MASK (3u << 2)
#define CFGR_SWS_PLL (2u << 2)
#define CFGR_BUS_MASK ((0xFu << 4) | (7u << 10) | (7u << 13))
#define CFGR_BUS_168MHZ ((0u << 4) | (5u << 10) | (4u << 13))  /* AHB /1, APB1 /4 (101), APB2 /2 (100) */
#define RCC_AHB1ENR REG(0x40023830u)       /* 7.3.10: GPIOAEN bit 0 */
#define RCC_AHB1ENR_GPIOAEN (1u << 0)
#define RCC_APB2ENR REG(0x40023844u)       /* 7.3.14: USART1EN bit 4 */
#define RCC_APB2ENR_USART1EN (1u << 4)

#define FLASH_ACR REG(0x40023C00u)         /* 3.9.1: LATENCY 2:0, PRFTEN 8, ICEN 9, DCEN 10 */
/* 3.5.1 Table 10: 5 wait states for 150..168 MHz at 2.7..3.6 V */
#define FLASH_ACR_168MHZ (5u | (1u << 8) | (1u << 9) | (1u << 10))

#define GPIOA_MODER REG(0x40020000u)       /* 8.4.1: 2 bits per pin, 10 = alternate function */
#define GPIOA_OSPEEDR REG(0x40020008u)     /* 8.4.3: 2 bits per pin, 10 = fast */
#define GPIOA_PUPDR REG(0x4002000Cu)       /* 8.4.4: 2 bits per pin, 01 = pull-up */
#define GPIOA_AFRH REG(0x40020024u)        /* 8.4.10: 4 bits per pin 8..15 */
#define USART1_AF 7u                       /* DS8626 Table 9: PA9 USART1_TX, PA10 USART1_RX on AF7 */
#define TX_PIN 9u
#define RX_PIN 10u

#define USART1_SR REG(0x40011000u)         /* 30.6.1: TXE bit 7 */
#define USART_SR_TXE (1u << 7)
#define USART1_DR REG(0x40011004u)         /* 30.6.2 */
#define USART1_BRR REG(0x40011008u)        /* 30.6.3: USARTDIV, 12.4 fixed point */
#define USART1_CR1 REG(0x4001100Cu)        /* 30.6.4: UE bit 13, TE bit 3; M (12) and OVER8 (15) 0: 8N1, 16x */
#define USART_CR1_UE (1u << 13)
#define USART_CR1_TE (1u << 3)

#define BAUD 115200u
#define HSI_HZ 16000000u
#define PLL_WAIT 100000u                   /* polls; the PLL locks within ~100 us (2 000 polls at 16 MHz) */

void nnscons_board_init(void);
void nnscons_board_putc(char c);
void nnscons_board_report(void);

static uint32_t pclk2_hz = HSI_HZ;         /* the clock USART1 gets (APB2) */

static int wait_for(volatile uint32_t *reg, uint32_t mask, uint32_t value)
{
    uint32_t polls;
    for (polls = 0; polls < PLL_WAIT; polls++) {
        if ((*reg & mask) == value) {
            return 1;
        }
    }
    return 0;
}

/* Reset state: SYSCLK is the HSI, every prescaler 1. Switches to the PLL only once it has locked. */
static void clock_to_168mhz(void)
{
    RCC_PLLCFGR = PLLCFGR_168MHZ_FROM_HSI;
    RCC_CR |= RCC_CR_PLLON;
    if (!wait_for(&RCC_CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY)) {
        return;
    }
    FLASH_ACR = FLASH_ACR_168MHZ;       /* the wait states first: the flash must keep up before the clock rises */
    RCC_CFGR = (RCC_CFGR & ~(CFGR_BUS_MASK | CFGR_SW_MASK)) | CFGR_BUS_168MHZ | CFGR_SW_PLL;
    if (wait_for(&RCC_CFGR, CFGR_SWS_MASK, CFGR_SWS_PLL)) {
        pclk2_hz = 84000000u;
    }
}

static void usart1_pins(void)
{
    const uint32_t pins = (3u << (2u * TX_PIN)) | (3u << (2u * RX_PIN));
    GPIOA_MODER = (GPIOA_MODER & ~pins) | (2u << (2u * TX_PIN)) | (2u << (2u * RX_PIN));
    GPIOA_OSPEEDR = (GPIOA_OSPEEDR & ~(3u << (2u * TX_PIN))) | (2u << (2u * TX_PIN));
    GPIOA_PUPDR = (GPIOA_PUPDR & ~(3u << (2u * RX_PIN))) | (1u << (2u * RX_PIN));
    GPIOA_AFRH = (GPIOA_AFRH & ~((0xFu << (4u * (TX_PIN - 8u))) | (0xFu << (4u * (RX_PIN - 8u))))) |
                 (USART1_AF << (4u * (TX_PIN - 8u))) | (USART1_AF << (4u * (RX_PIN - 8u)));
}

void nnscons_board_init(void)
{
    clock_to_168mhz();
    RCC_AHB1ENR |= RCC_AHB1ENR_GPIOAEN;
    RCC_APB2ENR |= RCC_APB2ENR_USART1EN;
    (void)RCC_APB2ENR;                  /* read back: the clock is on before the peripheral is touched */
    usart1_pins();
    USART1_CR1 = USART_CR1_UE;          /* 30.3.2: enable, set the baud rate, then the transmitter */
    USART1_BRR = (pclk2_hz + BAUD / 2u) / BAUD;     /* 30.3.4 with OVER8 = 0: USARTDIV * 16 = f_ck / baud */
    USART1_CR1 = USART_CR1_UE | USART_CR1_TE;
}

void nnscons_board_putc(char c)
{
    while ((USART1_SR & USART_SR_TXE) == 0u) {
    }
    USART1_DR = (uint8_t)c;
}

/* One line on what the set-up got (a float too: the newlib-nano link has -u _printf_float). */
void nnscons_board_report(void)
{
    const uint32_t divider = (pclk2_hz + BAUD / 2u) / BAUD;
    const double actual = (double)pclk2_hz / (double)divider;
    printf("nnscons board name=netduinoplus2 clock=%s uart=usart1 baud=%lu baud_error=%.3f%%\n",
           pclk2_hz == HSI_HZ ? "hsi-16MHz(pll-not-locked)" : "pll-168MHz", (unsigned long)BAUD,
           100.0 * (actual - BAUD) / BAUD);
}
