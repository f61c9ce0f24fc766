"""SCons tool ``nnscons_tool``: the loader of :mod:`nnscons.scons_tool`, where the tool lives (documented there and
in README.md, "Embedding in an SCons build").

The tool has a name of its own: SCons registers a tool module in ``sys.modules`` under the tool's name, which must
not be the library's. ``nnscons.tool_path()`` is the folder holding this loader (``site_scons/site_tools`` in a
checkout, a copy inside an installed package), so any SConstruct loads the tool with::

    import nnscons
    env.Tool("nnscons_tool", toolpath=[nnscons.tool_path()])

and a project whose ``site_scons`` this is can also write ``Environment(tools=["default", "nnscons_tool"])``.
"""
import os
import sys


def _library_root() -> str:
    """The folder holding the library package: site_scons/ in a checkout, site-packages when installed."""
    here = os.path.dirname(os.path.abspath(__file__))
    folder = os.path.dirname(here)
    while not os.path.isfile(os.path.join(folder, "nnscons", "scons_tool", "__init__.py")):
        parent = os.path.dirname(folder)
        if parent == folder:
            raise ImportError(f"{here}: no nnscons library package above this SCons tool")
        folder = parent
    return folder


try:
    import nnscons  # noqa: F401  (installed, or site_scons/ on sys.path)
except ImportError:
    sys.path.insert(0, _library_root())
from nnscons.scons_tool import exists, generate  # noqa: E402,F401  (the tool's entry points)
