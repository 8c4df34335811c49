"""``convt list``: every registered implementation, what it declares, and why an unusable one is unusable."""

from __future__ import annotations

import argparse
import sys

from . import PluginError, RegistryError, all_implementations, load_plugin
from .registry import adapter_modules


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="convt list", description=__doc__)
    parser.add_argument("--impl-module", action="append", default=[],
                        help="plugin file or dotted module to import first (repeatable)")
    args = parser.parse_args(argv)
    try:
        for module in dict.fromkeys(args.impl_module + adapter_modules()):
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
        pooled = _pooled(impl.fixed_geometries) + (f"; {impl.fixed_weights} weight values per geometry (compiles "
                                                   f"the weights in)" if impl.fixed_weights else "")
        print(f"{'':26} entry: {entry}; grad on={impl.grad or 'none'} double backward on="
              f"{impl.double_backward or 'none'}{pooled}")
        print(f"{'':26} dtypes={', '.join(impl.dtypes)}")
        for requirement, _ in impl.domain:
            print(f"{'':26} domain: needs {requirement}")
        if impl.built_on:
            print(f"{'':26} built on {', '.join(impl.built_on)} (their known discrepancies apply to it)")
        if not impl.special_values:
            print(f"{'':26} claims no IEEE inf/NaN semantics (special_values=False: that check does not run)")
        shown = {key: impl.extra[key] for key in ("version", "third_party", "preload") if key in impl.extra}
        if shown:
            print(f"{'':26} {', '.join(f'{key}={value}' for key, value in shown.items())}")
        print(f"{'':26} registered by {impl.module}; {impl.description}")
    return 0


def _pooled(share: float) -> str:
    """How much of an implementation's checking reuses fixed geometries, for the listing."""
    if not share:
        return ""
    on = "fixed geometries" if share == 1 else f"fixed geometries weighted {share:g} against new ones"
    return f"; {on} (compiles per shape)"

