"""SCons tool ``nnscons``: the loader of :mod:`nnscons.scons_tool`, where the tool lives (documented there and in
README.md, "Embedding in an SCons build").

``nnscons.tool_path()`` is the folder holding this loader: ``site_scons/site_tools`` in a checkout, a copy inside
an installed package. So any SConstruct loads the tool with::

    import nnscons
    env.Tool("nnscons", toolpath=[nnscons.tool_path()])

and a project whose ``site_scons`` this is can also write ``Environment(tools=["default", "nnscons"])``.
"""
import os
import sys


def _library_root() -> str:
    """The folder holding the library package: site_scons/ in a checkout, site-packages when installed."""
    here = os.path.dirname(os.path.abspath(__file__))
    folder = os.path.dirname(here)
    while not os.path.isfile(os.path.join(folder, "nnscons", "pipeline.py")):
        parent = os.path.dirname(folder)
        if parent == folder:
            raise ImportError(f"{here}: no nnscons library package above this SCons tool")
        folder = parent
    return folder


# SCons registered this loader under the tool's name, which is the library's name: give the name back. (A library
# imported before is executed again under the name; its loaded submodules are shared and re-attached below.)
if sys.modules.get("nnscons") is sys.modules.get(__name__):
    del sys.modules["nnscons"]
# While SCons loads a tool, the tool folders come first on sys.path: import the library from its own folder.
_ROOT = _library_root()
sys.path.insert(0, _ROOT)
try:
    import nnscons as _library
    from nnscons.scons_tool import exists, generate  # noqa: F401  (the tool's entry points)
finally:
    sys.path.remove(_ROOT)
for _name, _module in list(sys.modules.items()):
    if _name.startswith("nnscons.") and _name.count(".") == 1 and not hasattr(_library, _name.split(".")[1]):
        setattr(_library, _name.split(".")[1], _module)
