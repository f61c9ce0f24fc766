"""The ``nnscons`` command: the same stages as the SCons graph, for builds that are not SCons.

    nnscons inspect MODEL                      ops, shapes, quantization the model carries
    nnscons quantize MODEL [--calib C.npz] [--quant Q] [--range R] --out DIR
                                               import -> stats -> quantization tables into DIR
    nnscons qtable DIR                         print DIR/qtable.txt

Every failure is one line on stderr naming the file and the problem, with exit status 1 (2 for bad usage).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from . import ir, options as nn_options, pipeline
from .errors import NnsconsError


def _inspect(args: argparse.Namespace) -> int:
    from .importers import import_model
    graph, params = import_model(args.model)
    print(f"{ir.c_comment(os.path.basename(args.model))}: {graph.source}, layout {graph.layout}, "
          f"quantized: {graph.quantized}, {len(graph.ops)} ops, "
          f"{sum(t.size for t in graph.tensors.values() if t.is_const)} weights")
    for name in graph.inputs:
        _print_tensor("input", graph.tensors[name])
    for name in graph.outputs:
        _print_tensor("output", graph.tensors[name])
    for op in graph.ops:
        out = graph.tensors[op.outputs[0]]
        print(f"  {op.name:<24} {ir.c_comment(op.label, 30):<30} -> {out.shape}")
    return 0


def _print_tensor(role: str, t: ir.Tensor) -> None:
    q = f" scale={t.quant.scale[0]:.6g} zero_point={t.quant.zero_point[0]}" if t.quant else ""
    print(f"  {role} {t.name}: {t.dtype} {t.shape}{q}")


def _quantize(args: argparse.Namespace) -> int:
    values = nn_options.resolve({}, {"quant": args.quant, "range": args.range})
    out = args.out
    graph_json, params_npz = os.path.join(out, "graph.json"), os.path.join(out, "params.npz")
    pipeline.import_stage(args.model, graph_json, params_npz)
    ranges_json = None
    if args.calib:
        stats_npz, ranges_json = os.path.join(out, "stats.npz"), os.path.join(out, "ranges.json")
        pipeline.stats_stage(graph_json, params_npz, args.calib, stats_npz, os.path.join(out, "stats.txt"))
        pipeline.ranges_stage(graph_json, stats_npz, nn_options.for_stage(values, "ranges"), ranges_json)
    pipeline.quantize_stage(graph_json, params_npz, ranges_json, nn_options.for_stage(values, "quantize"),
                            os.path.join(out, "qtable.json"), os.path.join(out, "qtable.txt"),
                            os.path.join(out, "qparams.npz"), model_dir=os.path.dirname(args.model) or ".")
    print(f"nnscons: wrote {out}/qtable.json ({values['quant']}, range {values['range']})")
    return 0


def _qtable(args: argparse.Namespace) -> int:
    path = os.path.join(args.dir, "qtable.txt")
    try:
        with open(path, encoding="utf-8") as f:
            sys.stdout.write(f.read())
    except OSError as e:
        raise NnsconsError(path, e.strerror or "cannot read") from None
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nnscons", description="Neural networks as build sources for CMSIS-NN.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("inspect", help="show a model's ops, shapes and quantization")
    p.add_argument("model", help=".tflite or .onnx file")
    p.set_defaults(run=_inspect)

    p = sub.add_parser("quantize", help="import a model, gather statistics, write its quantization tables")
    p.add_argument("model", help=".tflite or .onnx file")
    p.add_argument("--calib", help="calibration set (.npz with key x)")
    for option in nn_options.OPTIONS:
        if {"ranges", "quantize"} & set(option.stages):
            p.add_argument(f"--{option.name}", default=None, help=option.help)
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(run=_quantize)

    p = sub.add_parser("qtable", help="print the readable quantization table of an output folder")
    p.add_argument("dir", help="folder holding qtable.txt (e.g. build/<model>)")
    p.set_defaults(run=_qtable)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except NnsconsError as e:
        print(f"nnscons: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
