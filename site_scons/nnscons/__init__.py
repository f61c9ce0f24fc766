"""nnscons: trained neural networks as build sources for CMSIS-NN on Cortex-M.

Stages, in graph order (one module each; data flows forward through files):

1. ``importers``  model file -> IR (``graph.json`` + ``params.npz``)            see :mod:`nnscons.ir`
2. ``reference``  the float interpreter of the IR (the seed's "float version of CMSIS-NN")
3. ``data``       calibration / test sets checked against the graph and put in IR layout
4. ``stats``      per-tensor statistics over a calibration set (``stats.npz``)
5. ``quantize``   quantization tables (``qtable.json``, ``qtable.txt``, ``qparams.npz``)

The SCons tool (``site_scons/site_tools/nnscons``) and the CLI (:mod:`nnscons.cli`) are thin faces over these.
"""
__version__ = "0.1.0"
