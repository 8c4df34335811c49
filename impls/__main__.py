"""``python -m impls``: list every registered implementation and whether it is usable here."""

from __future__ import annotations

import argparse
import sys

from . import PluginError, RegistryError, all_implementations, load_plugin


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m impls", description=__doc__)
    parser.add_argument("--impl-module", action="append", default=[],
                        help="plugin file or dotted module to import first (repeatable)")
    args = parser.parse_args(argv)
    try:
        for module in args.impl_module:
            load_plugin(module)
    except (PluginError, RegistryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for impl in all_implementations():
        status = "available" if impl.available else f"unavailable: {impl.unavailable_reason}"
        print(f"{impl.name:26} {status}")
        print(f"{'':26} dims={impl.dims} devices={impl.devices} deterministic on={impl.deterministic or 'none'} "
              f"tf32 on={impl.tf32 or 'none'}")
        if impl.accumulation:
            print(f"{'':26} accumulates {', '.join(f'{k} in {v}' for k, v in impl.accumulation.items())}")
        if impl.products:
            print(f"{'':26} rounds products {', '.join(f'{k} to {v}' for k, v in impl.products.items())}")
        transforms = [dtype for dtype in impl.dtypes if impl.algorithm_for(dtype) == "transform"]
        if transforms:
            print(f"{'':26} may use a transform algorithm (FFT/Winograd) for {', '.join(transforms)}")
        entry = ("shapes only" if impl.shape_only else "module class" if impl.extra.get("module_classes")
                 else "function")
        pooled = _pooled(impl.fixed_geometries)
        print(f"{'':26} entry: {entry}; grad on={impl.grad or 'none'} double backward on="
              f"{impl.double_backward or 'none'}{pooled}")
        print(f"{'':26} dtypes={', '.join(impl.dtypes)}")
        for requirement, _ in impl.domain:
            print(f"{'':26} domain: needs {requirement}")
        print(f"{'':26} {impl.description}")
    return 0


def _pooled(share: float) -> str:
    """How much of an implementation's checking reuses fixed geometries, for the listing."""
    if not share:
        return ""
    on = "fixed geometries" if share == 1 else f"fixed geometries weighted {share:g} against new ones"
    return f"; {on} (compiles per shape)"


if __name__ == "__main__":
    sys.exit(main())
