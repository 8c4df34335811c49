"""convt-conformance: a property-based conformance gate and fuzzer for transposed convolution.

The plugin API for your own kernel::

    from convt_conformance import register

    @register("my-kernel", dims=(1, 2, 3), devices=("cpu",), dtypes=("float32", "float64"))
    def conv_transpose(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                       dilation=1):
        ...

(``register_module`` does the same for an ``nn.ConvTranspose*d``-like class; docs/declarations.md lists
every declaration.) The package's parts: :mod:`.spec` (the contract) and :mod:`.reference` (its float64
evaluation), ``impls`` (what is checked), ``suites`` (the gate: checks, strategies, the pytest plugin)
and ``reports`` (what a person reads).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "register", "register_module"]

_HERE = Path(__file__).resolve().parent
CHECKOUT = _HERE.parent if not (_HERE / "impls").is_dir() and (_HERE.parent / "impls" / "__init__.py").is_file() \
    else None
"""The repository root when running from a checkout (``impls/``, ``suites/``, ``reports/`` sit beside this
package there, and an installed wheel holds them inside it), else None."""

from ._checkout import alias_top_level_packages  # noqa: E402

if CHECKOUT is not None:
    __path__.append(str(CHECKOUT))  # noqa: F821  (the package's own __path__): its subpackages live there
    alias_top_level_packages(CHECKOUT)


def __getattr__(name: str) -> Any:
    # Lazily: importing the package (the pytest plugin's entry, the CLI) must not import torch.
    if name in ("register", "register_module"):
        from . import impls

        return getattr(impls, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
