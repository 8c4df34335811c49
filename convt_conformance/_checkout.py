"""In a checkout, ``import impls`` (as plugin files written before the package existed do:
``from impls import register``) gives the very module ``convt_conformance.impls``, never a second copy
with a registry of its own. Only this checkout's own ``impls``, ``suites`` and ``reports`` are aliased:
a user's package of the same name elsewhere on the path is left alone."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from pathlib import Path

PACKAGES = ("impls", "suites", "reports")


class _Alias(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module) -> None:
        # The import system returns whatever sys.modules holds once this returns: the package's module.
        sys.modules[module.__name__] = importlib.import_module(f"{__package__}.{module.__name__}")


class _CheckoutAliases(importlib.abc.MetaPathFinder):
    def __init__(self, checkout: Path) -> None:
        self.checkout = checkout

    def find_spec(self, fullname: str, path=None, target=None):
        top = fullname.partition(".")[0]
        if top not in PACKAGES:
            return None
        if top != fullname:  # a submodule: aliased when its package is ours
            return _alias(fullname) if sys.modules.get(top) is sys.modules.get(f"{__package__}.{top}") else None
        found = importlib.machinery.PathFinder.find_spec(fullname, path)
        if found is None or found.origin is None or Path(found.origin).resolve() != \
                (self.checkout / top / "__init__.py").resolve():
            return None
        return _alias(fullname)


def _alias(fullname: str) -> importlib.machinery.ModuleSpec:
    return importlib.machinery.ModuleSpec(fullname, _Alias(), is_package=True)


def alias_top_level_packages(checkout: Path) -> None:
    """Put the aliases first on ``sys.meta_path`` (again, where a finder has since been put before them).
    pytest puts its assertion-rewriting finder first when a session starts, and that finder loads any
    module it is told to rewrite under the name asked for: ``suites.verdicts`` beside
    ``convt_conformance.suites.verdicts``, two classes for every finding. It is told to rewrite ``impls``,
    ``suites`` and ``reports`` wherever the checkout's own build metadata (``convt_conformance.egg-info``,
    which an install from the checkout leaves there) lists them as a pytest plugin's modules."""
    found = [finder for finder in sys.meta_path if isinstance(finder, _CheckoutAliases)]
    if found and sys.meta_path[0] is found[0]:
        return
    for finder in found:
        sys.meta_path.remove(finder)
    sys.meta_path.insert(0, found[0] if found else _CheckoutAliases(checkout))
