"""nnscons: trained neural networks as build sources for CMSIS-NN on Cortex-M.

Stages, in graph order (one module each; data flows forward through files):

1. ``importers``  model file -> IR (``graph.json`` + ``params.npz``)            see :mod:`nnscons.ir`
2. ``reference``  the float interpreter of the IR (the seed's "float version of CMSIS-NN")
3. ``data``       calibration / test sets checked against the graph and put in IR layout
4. ``stats``      per-tensor statistics over a calibration set (``stats.npz``)
5. ``quantize``   quantization tables (``qtable.json``, ``qtable.txt``, ``qparams.npz``)
6. ``codegen``    C sources calling CMSIS-NN (``<name>.h``, ``<name>_model.c``, ``<name>_weights.c``)

The SCons tool (:mod:`nnscons.scons_tool`) and the CLI (:mod:`nnscons.cli`) are thin faces over these.

The functions below locate what the stages and builds read besides Python code, in a source checkout
(``cmsis/``, ``targets/``, ``cmake/``, ``site_scons/site_tools/`` beside ``site_scons/``) and in an installed
package (the same folders shipped as package data inside ``nnscons/``)::

    env = Environment(tools=["default"]); env.Tool("nnscons_tool", toolpath=[nnscons.tool_path()])
"""
from pathlib import Path

__version__ = "0.1.0"

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent.parent  # the repository root, when running from a source checkout


def _shipped(installed: str, checkout: str) -> str:
    """The installed package's data folder if there is one, else the checkout's folder."""
    packaged = _PACKAGE / installed
    return str(packaged if packaged.is_dir() else _CHECKOUT / checkout)


def cmsis_path() -> str:
    """The portable CMSIS-NN kernel library (``Include/``, ``Source/``), the default for ``cmsis_nn=``."""
    return _shipped("_cmsis", "cmsis")


def targets_path() -> str:
    """The folder of target descriptions (``host``, ``m0`` ... ``m55``, each with a ``target.toml``)."""
    return _shipped("_targets", "targets")


def tool_path() -> str:
    """The folder to give SCons as ``toolpath`` to load the ``nnscons`` tool (:mod:`nnscons.scons_tool`)."""
    return _shipped("_tool", "site_scons/site_tools")


def cmake_path() -> str:
    """The folder holding ``nnscons.cmake`` (``include(<it>/nnscons.cmake)``) and the toolchain files."""
    return _shipped("_cmake", "cmake")



def runtime_path() -> str:
    """The runtime C sources: the Cortex-M startup code and the section script a board's linker script includes."""
    return str(_PACKAGE / "runtime")
