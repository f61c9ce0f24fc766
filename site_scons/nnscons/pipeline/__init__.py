"""The pipeline: the graph as data, the stage functions, and how steps run without SCons.

* :mod:`.steps`    the graph, stated once: :func:`model_steps` (a model's chain), :func:`host_proof_steps`
* :mod:`.stages`   each stage as a file-to-file function (``STAGES``: step kind -> function)
* :mod:`.modules`  the library files each stage's output depends on
* :mod:`.runner`   running steps in order, skipping those whose inputs, options, code and outputs are unchanged

The SCons tool (:mod:`nnscons.scons_tool`), the ``nnscons`` command (:mod:`nnscons.cli`, also what CMake runs) and
the experiments (:mod:`nnscons.experiments`) are faces over these: none states the graph again.
"""
from __future__ import annotations

from .modules import PACKAGE_DIR, RUNTIME_DIR, STAGE_MODULES, TEMPLATE_DIR, module_files, stage_sources
from .stages import (STAGES, check_stage, codegen_stage, diagnostics_stage, import_stage, quantize_stage,
                     ranges_stage, report_html_stage, scheme_of, stats_stage)
from .steps import (Step, codegen_outputs, features_step, firmware_inputs_step, frontend_check_step, host_proof_steps,
                    model_steps, outputs_of)

__all__ = ["PACKAGE_DIR", "RUNTIME_DIR", "STAGE_MODULES", "TEMPLATE_DIR", "module_files", "stage_sources", "STAGES",
           "check_stage", "codegen_stage", "diagnostics_stage", "import_stage", "quantize_stage", "ranges_stage",
           "report_html_stage", "scheme_of", "stats_stage", "Step", "codegen_outputs", "firmware_inputs_step",
           "host_proof_steps", "model_steps", "outputs_of", "features_step", "frontend_check_step"]
