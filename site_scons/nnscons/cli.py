"""The ``nnscons`` command: the same stages as the SCons graph, for builds that are not SCons (CMake, Make, scripts).

    nnscons inspect MODEL             ops (and whether code generation supports each), shapes, quantization
    nnscons qtable MODEL|DIR          print a quantization table (of a model, computed; or of an output folder)
    nnscons quantize MODEL --out DIR  import -> stats -> quantization tables into DIR
    nnscons generate MODEL --out DIR  the whole chain: C sources <name>.h, <name>_model.c, <name>_weights.c in DIR,
                                      a gcc-style depfile with --depfile (for CMake's DEPFILE, Make, Ninja)
    nnscons validate MODEL_DIR|FILE   generate, build, prove against TFLite Micro or the original model's
                                      interpreter (and with --target m4 in QEMU): one table, exit 0 when it passes
                                      (nnscons.validate)
    nnscons experiments MODEL_DIR     the model under every scheme and range method: one table of accuracy, SNR,
                                      flash and arena (build/experiments/<name>/<config>/)
    nnscons path cmsis|targets|...    where the shipped folders are (nnscons init, run: :mod:`nnscons.cli_project`)

``generate`` calls the stage functions of :mod:`nnscons.pipeline` with the options SCons gives them, so it writes
the bytes an SCons build writes for the same model and options. Its intermediate files go to a work folder
(``DIR/.nnscons-<name>/`` by default). Options come from a ``model.toml`` beside the model, then ``--options FILE``
(the same keys), then the flags. Outputs are written atomically and only when their bytes change (so Ninja's
``restat`` stops a rebuild there); ``--always-write`` rewrites them every run, which Makefile generators need:
make compares timestamps and would otherwise rerun the command on every build.

Every failure is one line on stderr naming the file and the problem, with exit status 1 (2 for bad usage).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Optional, Sequence

from . import (cmake_path, cmsis_path, fileio, ir, options as nn_options, pipeline, runtime_path, targets_path,
               tool_path, validate)
from . import cli_args
from .cli_args import Parser, check_inputs, checked_name, default_name, option_flags, resolve_options
from .frontend import frontend_text_beside
from .pipeline.runner import run_steps
from .errors import NnsconsError

TRACEBACK_ENV = "NNSCONS_TRACEBACK"  # set to 1 to see the traceback of an internal error


# ---- inspect ------------------------------------------------------------------------------------------------------
def _inspect(args: argparse.Namespace) -> int:
    from .importers import import_model
    graph, _ = import_model(args.model)
    print(f"{ir.c_comment(os.path.basename(args.model))}: {graph.source}, layout {graph.layout}, "
          f"quantized: {graph.quantized}, {len(graph.ops)} ops, "
          f"{sum(t.size for t in graph.tensors.values() if t.is_const)} weights")
    for name in graph.inputs:
        _print_tensor("input", graph.tensors[name])
    for name in graph.outputs:
        _print_tensor("output", graph.tensors[name])
    print(f"  {'op':<24} {'type':<18} {'codegen':<9} {'label':<30} output")
    unsupported = []
    for op in graph.ops:
        support = codegen_support(graph, op)
        if support == "no":
            unsupported.append(f"{op.name} ({op.type})")
        out = graph.tensors[op.outputs[0]]
        print(f"  {op.name:<24} {op.type:<18} {support:<9} {ir.c_comment(op.label, 30):<30} {out.shape}")
    if unsupported:
        print(f"code generation: {len(unsupported)} op(s) have no CMSIS-NN kernel: {', '.join(unsupported)}")
    else:
        print("code generation: every op is supported")
    return 0


def codegen_support(graph: ir.Graph, op: ir.Op) -> str:
    """``yes`` (a CMSIS-NN call or generated loop), ``int8`` (only with int8 activations), ``absorbed`` (a float
    input's quantize or a float output's dequantize, done by the generated conversion helpers) or ``no``."""
    from .kernels import INT8_ONLY_OPS, SUPPORTED_OPS, requantizes
    if any(op is absorbed for absorbed in ir.absorbed_conversions(graph, {})[2]):
        return "absorbed"
    if op.type == "quantize" and requantizes(graph.tensors[op.inputs[0]].dtype, graph.tensors[op.outputs[0]].dtype):
        return "yes"
    if op.type in INT8_ONLY_OPS:
        return "int8"
    if op.type in SUPPORTED_OPS:
        return "yes"
    return "no"


def _print_tensor(role: str, t: ir.Tensor) -> None:
    q = f" scale={t.quant.scale[0]:.6g} zero_point={t.quant.zero_point[0]}" if t.quant else ""
    print(f"  {role} {t.name}: {t.dtype} {t.shape}{q}")


# ---- the chain ------------------------------------------------------------------------------------------------------
def run_chain(name: str, model: str, calib: Optional[str], values: dict[str, str], work: str,
              until: str = "codegen") -> dict[str, str]:
    """The model's chain (:func:`nnscons.pipeline.model_steps`, the graph SCons builds) into ``work``, up to the
    stage ``until``, rerunning only steps that are not up to date. Returns every output by name."""
    steps = pipeline.model_steps(name, model, calib, values, work, frontend=frontend_text_beside(model))
    last = next(i for i, s in enumerate(steps) if s.stage == until)
    run_steps(steps[:last + 1])
    return pipeline.outputs_of(steps[:last + 1])


def _quantize(args: argparse.Namespace) -> int:
    check_inputs(args)
    values, _ = resolve_options(args)
    run_chain(default_name(args.model), args.model, args.calib, values, args.out, until="quantize")
    print(f"nnscons: wrote {args.out}/qtable.json ({values['quant']}, range {values['range']})")
    return 0


def _qtable(args: argparse.Namespace) -> int:
    if os.path.isdir(args.source):
        path = os.path.join(args.source, "qtable.txt")
        try:
            with open(path, encoding="utf-8") as f:
                sys.stdout.write(f.read())
        except OSError as e:
            raise NnsconsError(path, e.strerror or "cannot read") from None
        return 0
    args.model = args.source
    check_inputs(args)
    values, _ = resolve_options(args)
    with tempfile.TemporaryDirectory(prefix="nnscons-qtable-") as work:
        files = run_chain(default_name(args.model), args.model, args.calib, values, work, until="quantize")
        with open(files["qtable_txt"], encoding="utf-8") as f:
            sys.stdout.write(f.read())
    return 0


# ---- generate -----------------------------------------------------------------------------------------------------
def generate(model: str, out: str, name: Optional[str] = None, calib: Optional[str] = None,
             values: Optional[dict[str, str]] = None, work: Optional[str] = None, always_write: bool = False
             ) -> list[str]:
    """Run the chain for ``model``; put ``<name>.h``, ``_model.c``, ``_weights.c`` (a front end's ``_frontend.h``,
    ``.c`` too) into ``out``. Returns the output paths. The quantization tables and arena plan stay in ``work``."""
    name = checked_name(model, name or default_name(model))
    values = values or nn_options.resolve({}, {})
    work = work or os.path.join(out, f".nnscons-{name}")
    files = run_chain(name, model, calib, values, work)
    outputs = []
    for role in (r for r in ("header", "model_c", "weights_c", "frontend_h", "frontend_c") if r in files):
        with open(files[role], "rb") as f:
            data = f.read()
        outputs.append(os.path.join(out, os.path.basename(files[role])))
        write_if_changed(outputs[-1], data, always=always_write)
    return outputs


def write_if_changed(path: str, data: bytes, always: bool = False) -> bool:
    """Write ``data`` atomically unless the file already holds exactly it (keeps its timestamp, for Ninja's
    restat). Returns whether it wrote."""
    if not always:
        try:
            with open(path, "rb") as f:
                if f.read() == data:
                    return False
        except OSError:
            pass
    fileio.write_bytes(path, data)
    return True


def chain_sources(steps: Sequence[pipeline.Step]) -> list[str]:
    """The library files the chain's outputs depend on (every step's modules and templates), this module and the
    option resolution it shares with the other commands."""
    files = {f for step in steps for f in step.module_files()}
    files.update(os.path.abspath(m.__file__) for m in (sys.modules[__name__], cli_args))
    return sorted(files)


def depfile_text(outputs: Sequence[str], inputs: Sequence[str]) -> str:
    """A gcc-style (make) dependency rule: ``out1 out2: in1 in2 ...``, one input per line."""
    def escape(path: str) -> str:
        return os.path.abspath(path).replace("\\", "\\\\").replace(" ", "\\ ").replace("#", "\\#").replace("$", "$$")
    lines = [" ".join(escape(o) for o in outputs) + ":"] + [f"  {escape(i)}" for i in inputs]
    return " \\\n".join(lines) + "\n"


def _generate(args: argparse.Namespace) -> int:
    check_inputs(args)
    values, option_files = resolve_options(args)
    outputs = generate(args.model, args.out, args.name, args.calib, values, args.work, args.always_write)
    if args.depfile:
        steps = pipeline.model_steps(args.name or default_name(args.model), args.model, args.calib, values, ".",
                                     frontend=frontend_text_beside(args.model))
        inputs = [args.model] + ([args.calib] if args.calib else []) + option_files + chain_sources(steps)
        fileio.write_text(args.depfile, depfile_text(outputs, inputs))
    if not args.quiet:
        print(f"nnscons: generated {', '.join(outputs)} ({values['quant']}, range {values['range']}, "
              f"api {values['api']})")
    return 0


# ---- experiments ----------------------------------------------------------------------------------------------------
def _experiments(args: argparse.Namespace) -> int:
    from . import experiments
    return experiments.main_from_args(args)


# ---- kernels --------------------------------------------------------------------------------------------------------
def _kernels(args: argparse.Namespace) -> int:
    """The kernel library's build (nnscons.kernel_build) for other build systems: CMake reads this."""
    from .kernel_build import kernel_build
    build = kernel_build(args.cmsis)
    if args.cmake:
        print("set(NNSCONS_KERNEL_SOURCES " + ";".join(p.as_posix() for p in build.sources) + ")")
        print("set(NNSCONS_KERNEL_INCLUDE_DIRS " + ";".join(p.as_posix() for p in build.include_dirs) + ")")
        print(f"set(NNSCONS_KERNEL_STRICT_WARNINGS {'ON' if build.strict_warnings else 'OFF'})")
        return 0
    print("\n".join(str(path) for path in build.sources))
    return 0


def _play(args: argparse.Namespace) -> int:
    return __import__("nnscons.play").play.main(args.model_dir, args.build, args.port, args.no_browser)


def _fetch_dsp(args: argparse.Namespace) -> int:
    """CMSIS-DSP's sources for the audio front end (nnscons.cmsis_dsp): downloaded once, checked, unpacked; with
    --cmake, how to compile them, as CMake variables (nnscons_add_cmsisdsp reads them)."""
    from . import cmsis_dsp
    build = cmsis_dsp.dsp_build(args.root or cmsis_dsp.fetch())
    if not args.cmake:
        print(build.root)
        return 0
    for variable, values in (("SOURCES", build.sources), ("INCLUDE_DIRS", build.include_dirs),
                             ("DEFINITIONS", build.defines), ("OPTIONS", build.cflags)):
        print(f'set(NNSCONS_DSP_{variable} "' + ";".join(Path(v).as_posix() if isinstance(v, Path) else v
                                                        for v in values) + '")')
    return 0


_PATHS = {"cmsis": cmsis_path, "targets": targets_path, "tool": tool_path, "cmake": cmake_path, "runtime": runtime_path}


def _path(args: argparse.Namespace) -> int:
    print(_PATHS[args.what]())
    return 0


# ---- the parser -----------------------------------------------------------------------------------------------------
def build_parser(argv: Optional[Sequence[str]] = None) -> argparse.ArgumentParser:
    """The parser; the experiments' arguments only when ``argv`` runs that command (it imports much more than the
    other commands, and generate's depfile lists every nnscons module loaded)."""
    parser = Parser(prog="nnscons", description="Trained neural networks (.tflite, .onnx) as C sources calling "
                                                 "CMSIS-NN: the stages of the nnscons SCons build, as a command.")
    parser.add_argument("--version", action="version", version=f"nnscons {__import__('nnscons').__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)

    p = sub.add_parser("inspect", help="show a model's ops (and whether code generation supports each), shapes and "
                                       "quantization", description="Show a model's inputs, outputs and ops, and "
                                       "which ops code generation supports.")
    p.add_argument("model", help=".tflite or .onnx file")
    p.set_defaults(run=_inspect)

    p = sub.add_parser("qtable", help="print a quantization table (of a model, or of an output folder)",
                       description="Print the readable quantization table: computed for a model file (with the "
                                   "same options as generate), or the one in an output folder (build/<model>).")
    p.add_argument("source", metavar="MODEL|DIR", help=".tflite/.onnx file, or a folder holding qtable.txt")
    p.add_argument("--calib", help="calibration set (.npz with key x)")
    p.add_argument("--options", metavar="FILE", help="options file (the keys of model.toml)")
    option_flags(p, {"ranges", "quantize"})
    p.set_defaults(run=_qtable)

    p = sub.add_parser("quantize", help="import a model, gather statistics, write its quantization tables",
                       description="Import a model, gather statistics over a calibration set and write the "
                                   "quantization tables (qtable.json, qtable.txt, qparams.npz) into a folder.")
    p.add_argument("model", help=".tflite or .onnx file")
    p.add_argument("--calib", help="calibration set (.npz with key x)")
    p.add_argument("--options", metavar="FILE", help="options file (the keys of model.toml)")
    option_flags(p, {"ranges", "quantize"})
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(run=_quantize)

    p = sub.add_parser("generate", help="generate a model's C sources (and a depfile)",
                       description="Generate <name>.h, <name>_model.c and <name>_weights.c for a model into a "
                                   "folder: the same bytes an SCons build writes for the same model and options.")
    p.add_argument("model", help=".tflite or .onnx file")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the C sources")
    p.add_argument("--name", help="C name of the model (default: the model folder's name for .../<name>/model.*, "
                                  "else the file's stem)")
    p.add_argument("--calib", help="calibration set (.npz with key x); needed to quantize a float model")
    p.add_argument("--options", metavar="FILE", help="options file (the keys of model.toml), read after model.toml")
    option_flags(p, {"ranges", "quantize", "codegen"})
    p.add_argument("--depfile", metavar="FILE", help="write a gcc-style depfile: the outputs, then every input "
                                                     "read (model, calibration set, option files, templates, the "
                                                     "generator's modules)")
    p.add_argument("--work", metavar="DIR", help="folder for the intermediate files (default DIR/.nnscons-<name>)")
    p.add_argument("--always-write", action="store_true",
                   help="rewrite every output even when unchanged (for make, which compares timestamps)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(run=_generate)

    validate.register(sub)

    p = sub.add_parser("experiments", help="build a model under every scheme and range method, print one table",
                       description="Build a model folder under every quantization scheme, range method and kernel "
                                   "API, run each on the test set and print accuracy, agreement, SNR, flash and arena.")
    if argv is not None and list(argv[:1]) == ["experiments"]:
        from . import experiments
        experiments.add_arguments(p)
    p.set_defaults(run=_experiments)

    p = sub.add_parser("kernels", help="list the kernel library's sources and include folders",
                       description="The sources and include folders of the kernel library build (every integer "
                                   "kernel under Source/*/ of a CMSIS-NN checkout), as CMake reads them.")
    p.add_argument("--cmsis", metavar="PATH", help="a CMSIS-NN checkout (default: nnscons' portable library)")
    p.add_argument("--cmake", action="store_true", help="print CMake set() commands")
    p.set_defaults(run=_kernels)

    p = sub.add_parser("play", help="a local web page to play with a built model (float vs generated C)",
                       description="A page on 127.0.0.1: a built model's float and generated-C outputs side by side on "
                                   "its test samples with noise, or on a spoken word (audio models; espeak-ng).")
    p.add_argument("model_dir", help="the model folder (models/<name>)")
    p.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0: any free one; default 8765)")
    p.add_argument("--build", default="build", help="the build folder (default: build)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.set_defaults(run=_play)

    p = sub.add_parser("fetch-dsp", help="download CMSIS-DSP's sources for the audio front end (once)",
                       description="Unpack the pinned cmsisdsp sdist into $NNSCONS_CACHE or ~/.cache/nnscons.")
    p.add_argument("--root", metavar="DIR", help="another CMSIS-DSP tree (Include/, PrivateInclude/, Source/)")
    p.add_argument("--cmake", action="store_true", help="print the sources, include folders, definitions and "
                                                        "compiler options as CMake set() lines")
    p.set_defaults(run=_fetch_dsp)

    p = sub.add_parser("path", help="print where a shipped folder is (cmsis, targets, tool, cmake, runtime)",
                       description="Print where the kernel library (cmsis), the targets, the SCons toolpath (tool), "
                                   "nnscons.cmake (cmake) or the startup code and section script (runtime) are.")
    p.add_argument("what", choices=sorted(_PATHS))
    p.set_defaults(run=_path)
    from .cli_project import add_parsers     # init, run (cli.py is at its size limit)
    add_parsers(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    try:
        return args.run(args)
    except NnsconsError as e:
        where = e if e.path else NnsconsError(getattr(args, "model", None), e.message)
        print(f"nnscons: {where}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the output went to a pager or head that stopped reading
        sys.stdout = open(os.devnull, "w")
        return 1
    except OSError as e:
        print(f"nnscons: {e.filename or ''}{': ' if e.filename else ''}{e.strerror or e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug, not bad input: still one line, the traceback on request
        if os.environ.get(TRACEBACK_ENV):
            raise
        print(f"nnscons: internal error: {type(e).__name__}: {e} (set {TRACEBACK_ENV}=1 for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
