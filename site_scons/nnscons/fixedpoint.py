"""TFLite's integer arithmetic in Python, and the lookup tables code generation builds from it.

* :func:`quantize_multiplier` (TFLite's QuantizeMultiplier): a real scale as a Q31 multiplier and a shift; the
  quantize stage's every layer parameter.
* :func:`multiply_by_quantized_multiplier` (TFLite's MultiplyByQuantizedMultiplier, the s8 kernels'
  requantization) on numpy arrays: the simulation of the quantized network and the tables below.
* gemmlowp-style fixed point (:class:`Fixed`, exp, logistic, tanh) on Python integers.
* Lookup tables for the int8 element-wise ops that CMSIS-NN has no kernel for.

An int8 element-wise op maps each of the 256 input values to one output value, so the generated C can run it as
a table lookup, and the table can be computed here with exactly the integer arithmetic TFLite Micro's reference
kernels use, which makes the lookup bit-exact with TFLite Micro (``tests/test_codegen.py`` checks every input
value against its interpreter):

``logistic``  ``reference_integer_ops::Logistic``: the input minus its zero point, rescaled to a fixed-point
              number with 4 integer bits (multiplier ``scale * 2^27`` split by ``frexp``, TFLite's rounding),
              gemmlowp's fixed-point logistic, then rounded to the output's 1/256 steps (zero point -128);
              inputs beyond the radius where the result saturates give -128 / 127 directly.
``tanh``      ``reference_integer_ops::Tanh``: the same input rescaling, gemmlowp's fixed-point tanh, rounded to
              1/128 steps (zero point 0).
``leaky_relu`` ``reference_ops::QuantizeLeakyRelu``: x minus its zero point times the identity or the alpha
              multiplier (from the quantization table), plus the output zero point.
``quantize``  int8 -> int8 ``Requantize``: the same with one multiplier (input scale / output scale).

The fixed-point functions below follow gemmlowp's published algorithms (a Taylor expansion of exp on
[-1/4, 0) with a barrel shifter of exp(-2^k) constants for the rest, Newton-Raphson division for 1 / (1 + x)) on
Python integers holding int32 raw values, with gemmlowp's rounding (round half away from zero) and wrap-around.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
# The shifts the kernels take from quantize_multiplier: TFLite's QuantizeMultiplier range (a left shift of an int32
# by 31 or more is undefined; below -31 the multiplier is 0); the s16 kernels' 64-bit requantization shifts right
# by 15 - shift, so at most 14 there.
SHIFT_MIN, SHIFT_MAX, SHIFT_MAX_S64 = -31, 30, 14
INPUT_INTEGER_BITS = 4                 # TFLite's logistic / tanh input format: Q4.27

# exp(-2^k) in Q0.31 for k = -2..4, the barrel shifter of exp_on_negative_values
_EXP_OF_MINUS_POWERS_OF_TWO = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535),
                               (3, 720401), (4, 242))
_EXP_MINUS_ONE_EIGHTH = 1895147668     # exp(-1/8) in Q0.31
_ONE_THIRD = 715827883                 # 1/3 in Q0.31
_48_OVER_17 = 1515870810               # 48/17 in Q2.29 (Newton-Raphson start)
_MINUS_32_OVER_17 = -1010580540        # -32/17 in Q2.29


def _wrap(value: int) -> int:
    """An integer as an int32 wraps it."""
    return ((value + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _divide_toward_zero(numerator: int, denominator: int) -> int:
    quotient = abs(numerator) // denominator
    return quotient if numerator >= 0 else -quotient


def rounding_doubling_high_mul(a: int, b: int) -> int:
    """The high 32 bits of 2ab, rounded half away from zero; the one overflow (both INT32_MIN) saturates."""
    if a == b == INT32_MIN:
        return INT32_MAX
    product = a * b
    nudge = (1 << 30) if product >= 0 else 1 - (1 << 30)
    return _divide_toward_zero(product + nudge, 1 << 31)


def rounding_divide_by_pot(value: int, exponent: int) -> int:
    """value / 2^exponent rounded half away from zero."""
    mask = (1 << exponent) - 1
    threshold = (mask >> 1) + (1 if value < 0 else 0)
    return (value >> exponent) + (1 if (value & mask) > threshold else 0)


def _saturating_multiply_by_pot(value: int, exponent: int) -> int:
    if exponent > 0:
        return max(INT32_MIN, min(INT32_MAX, value << exponent))
    return rounding_divide_by_pot(value, -exponent)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """``real`` as a Q31 multiplier and a shift (positive = left): ``real ~= multiplier * 2^(shift - 31)``.

    As TFLite's QuantizeMultiplier: ``real = q * 2^shift`` with q in [0.5, 1) (frexp), multiplier =
    round-half-away(q * 2^31); a multiplier that rounds up to 2^31 becomes 2^30 with shift + 1; a real below
    2^-32 (shift < -31) gives (0, 0). A shift above ``SHIFT_MAX`` is returned as it is: the caller refuses it
    (:mod:`nnscons.quantize.bounds`)."""
    real = float(real)
    if not math.isfinite(real) or real < 0:
        raise ValueError(f"cannot quantize multiplier {real}")
    if real == 0.0:
        return 0, 0
    fraction, shift = math.frexp(real)
    multiplier = math.floor(fraction * (1 << 31) + 0.5)    # exact: a power-of-two scaling of a double, > 0
    if multiplier == 1 << 31:
        multiplier //= 2
        shift += 1
    if shift < SHIFT_MIN:
        return 0, 0
    return multiplier, shift


def multiply_by_quantized_multiplier(acc: np.ndarray, multiplier: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``acc * multiplier * 2^(shift - 31)`` as TFLite's MultiplyByQuantizedMultiplier and ``arm_nn_requantize``:
    a rounding doubling high multiply (ties up for positive products, toward zero's side for negative ones), then
    a rounding right shift (ties away). Element-wise on int64 arrays (or scalars)."""
    acc = np.asarray(acc).astype(np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    product = np.left_shift(acc, left) * np.asarray(multiplier).astype(np.int64)
    nudged = product + np.where(product >= 0, 1 << 30, 1 - (1 << 30))
    high = np.where(nudged >= 0, nudged >> 31, -((-nudged) >> 31))     # C division: toward zero
    mask = np.left_shift(np.int64(1), right) - 1
    threshold = (mask >> 1) + (high < 0)
    return (high >> right) + ((high & mask) > threshold)


@dataclass(frozen=True)
class Fixed:
    """A gemmlowp fixed-point number: an int32 ``raw`` value with ``integer_bits`` integer bits (the rest, of
    31, fractional)."""

    raw: int
    integer_bits: int

    def __add__(self, other: "Fixed") -> "Fixed":
        return Fixed(_wrap(self.raw + other.raw), self.integer_bits)

    def __sub__(self, other: "Fixed") -> "Fixed":
        return Fixed(_wrap(self.raw - other.raw), self.integer_bits)

    def __neg__(self) -> "Fixed":
        return Fixed(_wrap(-self.raw), self.integer_bits)

    def __mul__(self, other: "Fixed") -> "Fixed":
        return Fixed(rounding_doubling_high_mul(self.raw, other.raw), self.integer_bits + other.integer_bits)

    def rescale(self, integer_bits: int) -> "Fixed":
        return Fixed(_saturating_multiply_by_pot(self.raw, self.integer_bits - integer_bits), integer_bits)

    def reinterpret(self, integer_bits: int) -> "Fixed":
        """The same raw value read with other integer bits: an exact multiplication by a power of two."""
        return Fixed(self.raw, integer_bits)


def _one(integer_bits: int) -> Fixed:
    return Fixed(INT32_MAX if integer_bits == 0 else 1 << (31 - integer_bits), integer_bits)


def _power_of_two(integer_bits: int, exponent: int) -> Fixed:
    return Fixed(1 << (31 - integer_bits + exponent), integer_bits)


def _exp_on_last_quarter(a: Fixed) -> Fixed:
    """exp(a) for a in [-1/4, 0) (Q0.31): a Taylor expansion around -1/8."""
    x = a + _power_of_two(0, -3)
    x2 = x * x
    x3 = x2 * x
    x4_over_4 = Fixed(_saturating_multiply_by_pot((x2 * x2).raw, -2), 0)
    polynomial = Fixed(_saturating_multiply_by_pot((((x4_over_4 + x3) * Fixed(_ONE_THIRD, 0)) + x2).raw, -1), 0)
    constant = Fixed(_EXP_MINUS_ONE_EIGHTH, 0)
    return constant + constant * (x + polynomial)


def exp_on_negative_values(a: Fixed) -> Fixed:
    """exp(a) for a <= 0, in Q0.31."""
    bits, fractional = a.integer_bits, 31 - a.integer_bits
    quarter = _power_of_two(bits, -2)
    a_mod_quarter_minus_quarter = Fixed(a.raw & (quarter.raw - 1), bits) - quarter
    result = _exp_on_last_quarter(a_mod_quarter_minus_quarter.rescale(0))
    remainder = (a_mod_quarter_minus_quarter - a).raw
    for exponent, multiplier in _EXP_OF_MINUS_POWERS_OF_TWO:
        if bits > exponent and remainder & (1 << (fractional + exponent)):
            result = result * Fixed(multiplier, 0)
    if bits > 5 and a.raw < -(1 << (36 - bits)):
        result = Fixed(0, 0)
    return _one(0) if a.raw == 0 else result


def _rounding_half_sum(a: int, b: int) -> int:
    total = a + b
    return _divide_toward_zero(total + (1 if total >= 0 else -1), 2)


def _newton_two_over_one_plus(a: Fixed) -> Fixed:
    """2 / (1 + a) for a in [0, 1] (Q2.29), three Newton-Raphson steps."""
    half_denominator = Fixed(_rounding_half_sum(a.raw, _one(0).raw), 0)
    x = Fixed(_48_OVER_17, 2) + half_denominator * Fixed(_MINUS_32_OVER_17, 2)
    for _ in range(3):
        x = x + (x * (_one(2) - half_denominator * x)).rescale(2)
    return x


def logistic(a: Fixed) -> Fixed:
    """1 / (1 + exp(-a)) in Q0.31."""
    if a.raw == 0:
        return Fixed(1 << 30, 0)
    positive = a.raw > 0
    magnitude = a if positive else -a
    on_positive = _newton_two_over_one_plus(exp_on_negative_values(-magnitude)).reinterpret(1).rescale(0)
    return on_positive if positive else _one(0) - on_positive


def tanh(a: Fixed) -> Fixed:
    """tanh(a) in Q0.31."""
    if a.raw == 0:
        return Fixed(0, 0)
    negative = a.raw < 0
    non_positive = a if negative else -a
    exp_of_twice = exp_on_negative_values(non_positive.reinterpret(non_positive.integer_bits + 1))
    magnitude = (_newton_two_over_one_plus(exp_of_twice) - _one(2)).rescale(0)
    return -magnitude if negative else magnitude


# ---- the tables --------------------------------------------------------------------------------------------------
def _input_rescaling(scale: float) -> tuple[int, int, int]:
    """TFLite's multiplier, left shift and saturation radius for an int8 input brought to Q4.27."""
    multiplier, shift = quantize_multiplier(float(np.float32(scale)) * float(1 << (31 - INPUT_INTEGER_BITS)))
    if multiplier == 0 or shift < 0:
        raise ValueError(f"input scale {scale} is too small for TFLite's int8 logistic / tanh")
    top = (1 << INPUT_INTEGER_BITS) - 1
    radius = math.floor(top * float(1 << (31 - INPUT_INTEGER_BITS)) / float(1 << shift))
    return multiplier, shift, radius


def _table(function, zero_point: int, scale: float, output_bits: int, output_zero_point: int) -> np.ndarray:
    multiplier, shift, radius = _input_rescaling(scale)
    table = []
    for value in range(-128, 128):
        x = value - zero_point
        if x <= -radius:
            table.append(-128)
        elif x >= radius:
            table.append(127)
        else:
            q4 = int(multiply_by_quantized_multiplier(x, multiplier, shift))
            result = function(Fixed(q4, INPUT_INTEGER_BITS)).raw
            table.append(max(-128, min(127, rounding_divide_by_pot(result, 31 - output_bits) + output_zero_point)))
    return np.array(table, dtype=np.int8)


def logistic_s8(zero_point: int, scale: float) -> np.ndarray:
    """TFLite's int8 logistic for every input value -128..127 (output scale 1/256, zero point -128)."""
    return _table(logistic, zero_point, scale, 8, -128)


def leaky_relu_s8(input_offset: int, output_offset: int, identity: tuple[int, int],
                  alpha: tuple[int, int]) -> np.ndarray:
    """TFLite's int8 leaky ReLU for every input value -128..127: x - zero point requantized with the identity
    multiplier (x >= 0) or the alpha one (x < 0), plus the output zero point (``input_offset`` = -zero point)."""
    x = np.arange(-128, 128, dtype=np.int64) + input_offset
    multiplier = np.where(x >= 0, identity[0], alpha[0])
    shift = np.where(x >= 0, identity[1], alpha[1])
    return np.clip(multiply_by_quantized_multiplier(x, multiplier, shift) + output_offset, -128, 127).astype(np.int8)


def requantize_s8(input_offset: int, output_offset: int, rescale: tuple[int, int]) -> np.ndarray:
    """TFLite's int8 -> int8 QUANTIZE for every input value: x minus its zero point requantized (one multiplier,
    input scale / output scale), plus the output zero point."""
    return leaky_relu_s8(input_offset, output_offset, rescale, rescale)


def tanh_s8(zero_point: int, scale: float) -> np.ndarray:
    """TFLite's int8 tanh for every input value -128..127 (output scale 1/128, zero point 0)."""
    return _table(tanh, zero_point, scale, 7, 0)
