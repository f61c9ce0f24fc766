"""nnscons.fixedpoint: the int8 logistic / tanh / leaky ReLU tables equal TFLite Micro's interpreter on every input
value, for many input quantizations; and the fixed-point primitives behave as gemmlowp's at their edges."""
from __future__ import annotations

import math

import numpy as np
import pytest
from tflite_micro import runtime

import tflite_builder as tb
from nnscons import fixedpoint

QUANTIZATIONS = [(0.0005, 0), (0.003, -128), (0.02, 17), (0.05, -5), (0.1, 127), (0.25, -60), (0.5, 3), (1.0, 0)]
OPS = {"LOGISTIC": (fixedpoint.logistic_s8, tb.Quant([1 / 256], [-128])),
       "TANH": (fixedpoint.tanh_s8, tb.Quant([1 / 128], [0]))}


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("scale, zero_point", QUANTIZATIONS)
def test_table_equals_tflite_micro_on_every_input(op: str, scale: float, zero_point: int) -> None:
    table_of, out_quant = OPS[op]
    interpreter = runtime.Interpreter.from_bytes(tb.unary(op, (1, 256), tb.Quant([scale], [zero_point]), out_quant))
    interpreter.set_input(np.arange(-128, 128, dtype=np.int8).reshape(1, 256), 0)
    interpreter.invoke()
    expected = interpreter.get_output(0).reshape(-1)
    table = table_of(zero_point, scale)
    np.testing.assert_array_equal(table, expected)
    assert len(set(table.tolist())) >= 5                     # the range does exercise the function


def test_tables_are_close_to_the_real_functions() -> None:
    x = (np.arange(-128, 128) - 10) * 0.03
    logistic = (fixedpoint.logistic_s8(10, 0.03).astype(np.int64) + 128) / 256
    tanh = fixedpoint.tanh_s8(10, 0.03).astype(np.int64) / 128
    assert np.max(np.abs(logistic - 1 / (1 + np.exp(-x)))) <= 1 / 256
    assert np.max(np.abs(tanh - np.tanh(x))) <= 1 / 128


def test_fixed_point_edges() -> None:
    assert fixedpoint.rounding_doubling_high_mul(fixedpoint.INT32_MIN, fixedpoint.INT32_MIN) == \
        fixedpoint.INT32_MAX                                                                   # saturates
    assert fixedpoint.rounding_doubling_high_mul(1 << 30, 1 << 30) == 1 << 29                         # 0.5 * 0.5
    assert fixedpoint.rounding_divide_by_pot(5, 1) == 3 and fixedpoint.rounding_divide_by_pot(-5, 1) == -3   # half away
    assert fixedpoint.logistic(fixedpoint.Fixed(0, 4)).raw == 1 << 30
    assert fixedpoint.tanh(fixedpoint.Fixed(0, 4)).raw == 0
    one_q4 = fixedpoint.Fixed(1 << 27, 4)
    assert fixedpoint.logistic(one_q4).raw / 2 ** 31 == pytest.approx(1 / (1 + math.exp(-1)), abs=1e-6)
    assert fixedpoint.tanh(one_q4).raw / 2 ** 31 == pytest.approx(math.tanh(1), abs=1e-6)
    exp_minus_3 = fixedpoint.exp_on_negative_values(fixedpoint.Fixed(-(3 << 27), 4)).raw / 2 ** 31
    assert exp_minus_3 == pytest.approx(math.exp(-3), abs=1e-6)
    with pytest.raises(ValueError, match="too small"):
        fixedpoint.logistic_s8(0, 1e-12)


@pytest.mark.parametrize("alpha", [0.0, 0.01, 0.2, 0.3, 0.77])
def test_leaky_relu_table_from_the_quantization_table_equals_tflite_micro(alpha: float, tmp_path) -> None:
    """The quantize stage's multipliers (float32 ratios, as TFLite's kernel) through nnscons.fixedpoint."""
    from nnscons import quantize
    from nnscons.importers import import_model
    rng = np.random.default_rng(int(alpha * 100))
    for _ in range(4):
        x_quant = tb.Quant([float(rng.uniform(0.005, 0.3))], [int(rng.integers(-128, 128))])
        out_quant = tb.Quant([float(rng.uniform(0.005, 0.3))], [int(rng.integers(-128, 128))])
        model = tb.leaky_relu((1, 256), x_quant, out_quant, alpha=alpha)
        (tmp_path / "m.tflite").write_bytes(model)
        graph, params = import_model(tmp_path / "m.tflite")
        layer = quantize.build_qtable(graph, params, None, "model").tables["layers"][graph.ops[0].name]
        table = fixedpoint.leaky_relu_s8(layer["input_offset"], layer["output_offset"],
                                         (layer["multiplier"], layer["shift"]),
                                         (layer["alpha_multiplier"], layer["alpha_shift"]))
        interpreter = runtime.Interpreter.from_bytes(model)
        interpreter.set_input(np.arange(-128, 128, dtype=np.int8).reshape(1, 256), 0)
        interpreter.invoke()
        np.testing.assert_array_equal(table, interpreter.get_output(0).reshape(-1))
