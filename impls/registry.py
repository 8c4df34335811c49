"""Registering implementations, listing the usable ones, and loading plugin modules."""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import torch

from ..spec import DTYPES

BUILTIN_PREFIX = __package__ + "."  # the modules of the built-ins and adapters
KNOWN_DEVICES = ("cpu", "cuda", "meta")  # meta: tensors without values (shape-only implementations)
ConvTransposeFn = Callable[..., torch.Tensor]
DomainPredicate = Callable[[Any], bool]


class RegistryError(ValueError):
    """A registration or selection that cannot be honoured; the message is one line."""


def device_unavailable_reason(device: str) -> str | None:
    """Why ``device`` cannot be used on this machine, or None when it can."""
    if device == "cuda" and not torch.cuda.is_available():
        return "CUDA is not available (no GPU or a CPU build of torch)"
    return None


@dataclass(frozen=True, kw_only=True)
class Implementation:
    """A registered transposed convolution and what it declares about itself (built by keyword)."""

    name: str
    fn: ConvTransposeFn
    dims: tuple[int, ...]
    devices: tuple[str, ...]
    dtypes: tuple[str, ...]
    deterministic: tuple[str, ...] = ()  # devices on which two identical calls give identical bits
    tf32: tuple[str, ...] = ()  # devices on which float32 inputs may be rounded to TF32 inside the kernel
    # dtype name -> the dtype partial sums are kept in, where it differs from spec.accumulation_dtype
    accumulation: dict[str, str] = field(default_factory=dict)
    # dtype name -> the dtype each product is rounded to before it is summed (none: products are exact
    # in the accumulation type, or rounded to it)
    products: dict[str, str] = field(default_factory=dict)
    # dtype name -> "direct" (each product formed once, summed in any order) or "transform" (FFT or
    # Winograd-style: values mixed through a transform); dtypes not named are "direct"
    algorithm: dict[str, str] = field(default_factory=dict)
    grad: tuple[str, ...] = ()  # devices on which autograd differentiates it (its backward is checked)
    double_backward: tuple[str, ...] = ()  # devices on which its backward is differentiable in turn
    shape_only: bool = False  # computes shapes, not values (meta kernels, FakeTensor): no value check applies
    # compiles per shape: the weight of drawing an example on a few fixed geometries, values varying (1: all)
    fixed_geometries: float = 0.0
    # compiles its weights into the program: the weight and bias of each example come from this many values per
    # geometry, while the input still varies (0: new weights every example)
    fixed_weights: int = 0
    # what it supports beyond dims and dtypes: (requirement, predicate over a problem), True where supported
    domain: tuple[tuple[str, DomainPredicate], ...] = ()
    description: str = ""
    source: str = ""
    module: str = ""  # the module that registered it: "convt_conformance.impls.*" for the built-ins, else a plugin's
    missing: str | None = None  # why it cannot run at all here (an optional package not installed)
    built_on: tuple[str, ...] = ()  # the implementations it runs on top of: their known discrepancies are its too
    special_values: bool = True  # claims IEEE inf/NaN semantics (False: the special-values check is not run)
    extra: dict = field(default_factory=dict)
    registered_at: int = 0  # time.monotonic_ns() when registered (see modules_registered_since)

    def outside_domain(self, problem: Any) -> list[str]:
        """The declared requirements ``problem`` does not meet (empty: inside the declared domain)."""
        unmet = []
        for requirement, supported in self.domain:
            try:
                inside = bool(supported(problem))
            except Exception as exc:  # noqa: BLE001  (a plugin's predicate: name it, in one line)
                raise RegistryError(f"implementation {self.name!r}: domain predicate {requirement!r} raised "
                                    f"{type(exc).__name__}: {exc}") from None
            if not inside:
                unmet.append(requirement)
        return unmet

    def is_deterministic(self, device: str) -> bool:
        return device in self.deterministic

    def differentiable(self, device: str) -> bool:
        return device in self.grad

    def twice_differentiable(self, device: str) -> bool:
        return device in self.double_backward

    def uses_tf32(self, device: str) -> bool:
        return device in self.tf32

    def algorithm_for(self, dtype: str) -> str:
        return self.algorithm.get(dtype, "direct")

    @property
    def builtin(self) -> bool:
        """Registered by this package itself (third-party framework adapters included)."""
        return self.module.startswith(BUILTIN_PREFIX)

    @property
    def usable_devices(self) -> tuple[str, ...]:
        return tuple(d for d in self.devices if device_unavailable_reason(d) is None)

    @property
    def unavailable_reason(self) -> str | None:
        if self.missing:
            return self.missing
        if self.usable_devices:
            return None
        return "; ".join(f"{d}: {device_unavailable_reason(d)}" for d in self.devices)

    @property
    def available(self) -> bool:
        return not self.missing and bool(self.usable_devices)


_REGISTRY: dict[str, Implementation] = {}
# module name -> the implementations it registered (a plugin file imported both by path and as a
# dotted module registers the same implementations under two module names)
_BY_MODULE: dict[str, set[str]] = {}


def register(name: str, *, dims: Sequence[int] = (1, 2, 3), devices: Sequence[str] = ("cpu",),
             dtypes: Sequence[str] = ("float32", "float64"),
             deterministic: bool | Sequence[str] = True, tf32: bool | Sequence[str] = False,
             accumulation: dict[str, str] | None = None, products: dict[str, str] | None = None,
             algorithm: str | dict[str, str] = "direct", grad: bool | Sequence[str] = False,
             double_backward: bool | Sequence[str] = False, shape_only: bool = False,
             fixed_geometries: bool | float = False, fixed_weights: int = 0,
             domain: dict[str, DomainPredicate] | None = None,
             description: str = "", built_on: str | Sequence[str] = (), special_values: bool = True,
             missing: str | None = None, registered_by: str | None = None,
             **extra: object) -> Callable[[ConvTransposeFn], ConvTransposeFn]:
    """Decorator that registers ``fn(input, weight, bias=None, stride=1, padding=0,
    output_padding=0, groups=1, dilation=1)`` under ``name``; returns ``fn`` unchanged.

    ``deterministic`` and ``tf32`` are True (on every declared device), False, or the devices on
    which they hold. ``tf32``: float32 inputs may be rounded to TF32 inside the kernel.
    ``accumulation`` maps a dtype to the dtype its partial sums are kept in, where that is not the
    default (float32 for half types); ``products`` maps a dtype to the dtype each product is rounded
    to before it is summed. ``algorithm`` is ``"direct"`` (default), ``"transform"`` (FFT or
    Winograd-style), or a dict from dtype to either. ``grad`` (True, or the devices): autograd
    differentiates ``fn`` (torch ops, or a ``torch.autograd.Function`` with its own backward), and the
    gradient checks run; ``double_backward``: that backward is differentiable too. ``shape_only``: it
    returns tensors without values (the meta device, FakeTensor), so only the shape and error checks
    apply. ``fixed_geometries``: each new shape costs a compilation (``torch.compile``, XLA), so the
    checks draw from a few fixed geometries while values (and, for the layout check, layouts) vary:
    True for every example, or the weight of a fixed geometry against a new one (0.8: most examples
    reuse a compiled shape, the others draw a new geometry, so the search still reaches every region).
    ``fixed_weights``: the runtime compiles the weights into its program (an ahead-of-time export, a mobile
    delegate), so the weight and bias of each example come from this many values per geometry while the input
    still varies, and one compiled program serves many examples (with ``fixed_geometries``: a few programs
    serve the whole run).
    ``domain`` maps a requirement (``"groups == 1"``) to a predicate that is True for the problems
    it supports, for what a framework serves beyond dims and dtypes; the predicate gets the problem
    (``dims``, ``input_shape``, ``weight_shape``, ``bias``, per-axis ``stride``, ``padding``,
    ``output_padding``, ``dilation``, ``groups``, ``dtype``, ``layout``, ``batched``). Value checks
    draw inside the domain; outside it the gate checks only that a problem is refused cleanly.
    ``built_on`` names the implementations (``"torch-cpu-default"``) whose kernels this one runs on
    top of: their known-discrepancy rules apply to it too, reported as inherited. ``special_values=False``
    declares that IEEE inf/NaN semantics are not claimed (autograd of the operation, an FFT): the
    special-values check is not run, and the report says so.
    The error bounds and checks the suite applies follow these declarations
    (docs/error-model.md). ``missing`` marks an implementation whose package is not installed: it is
    listed, with that reason, but never run. ``registered_by`` names the registering module where
    a helper calls this for it (:func:`impls.modules.register_module`).
    """
    dims_t, devices_t, dtypes_t = tuple(dims), tuple(devices), tuple(dtypes)
    _check_declaration(name, dims_t, devices_t, dtypes_t)
    deterministic_t = _on_devices(name, "deterministic", deterministic, devices_t)
    tf32_t = _on_devices(name, "tf32", tf32, devices_t)
    grad_t = _on_devices(name, "grad", grad, devices_t)
    double_t = _on_devices(name, "double_backward", double_backward, devices_t)
    domain_t = _domain(name, domain or {})
    hosts = (built_on,) if isinstance(built_on, str) else tuple(built_on)
    if not all(isinstance(host, str) and host for host in hosts) or name in hosts:
        raise RegistryError(f"implementation {name!r}: built_on must name other implementations, got {built_on!r}")
    pooled = float(fixed_geometries)
    if not 0.0 <= pooled <= 1.0:
        raise RegistryError(f"implementation {name!r}: fixed_geometries must be True, False or a weight between 0 "
                            f"and 1, got {fixed_geometries!r}")
    if isinstance(fixed_weights, bool) or not isinstance(fixed_weights, int) or fixed_weights < 0:
        raise RegistryError(f"implementation {name!r}: fixed_weights must be how many weight values per geometry "
                            f"(an int >= 0), got {fixed_weights!r}")
    if not set(double_t) <= set(grad_t):
        raise RegistryError(f"implementation {name!r}: double_backward needs grad on the same devices")
    accumulation = _dtype_map(name, "accumulation", accumulation or {})
    products = _dtype_map(name, "products", products or {})
    algorithms = {dtype: algorithm for dtype in dtypes_t} if isinstance(algorithm, str) else dict(algorithm)
    bad = sorted(set(algorithms.values()) - set(ALGORITHMS)) + sorted(set(algorithms) - set(DTYPES))
    if bad:
        raise RegistryError(f"implementation {name!r}: algorithm must be one of {ALGORITHMS} (or a dict from "
                            f"dtype to one), got {bad}")

    # who registers (a plugin, or a built-in module), not where fn was written
    module = registered_by or sys._getframe(1).f_globals.get("__name__", "?")

    def decorator(fn: ConvTransposeFn) -> ConvTransposeFn:
        source = _source_of(fn)
        if name in _REGISTRY and _REGISTRY[name].source != source:
            raise RegistryError(f"implementation {name!r} from {source} is already registered "
                                f"by {_REGISTRY[name].source}")
        _BY_MODULE.setdefault(module, set()).add(name)
        _REGISTRY[name] = Implementation(
            name=name, fn=fn, dims=dims_t, devices=devices_t, dtypes=dtypes_t, deterministic=deterministic_t,
            tf32=tf32_t, accumulation=accumulation, products=products, algorithm=algorithms, grad=grad_t,
            double_backward=double_t, shape_only=shape_only, fixed_geometries=pooled, fixed_weights=fixed_weights,
            domain=domain_t,
            description=description, source=source, module=module, missing=missing, built_on=hosts,
            special_values=bool(special_values), extra=dict(extra),
            registered_at=time.monotonic_ns())
        return fn

    return decorator


ALGORITHMS = ("direct", "transform")


def register_missing(name: str, reason: str, **declarations: Any) -> None:
    """List an optional adapter whose package is not installed: shown with ``reason``, never run."""
    module = sys._getframe(1).f_globals.get("__name__", "?")
    register(name, missing=reason, registered_by=module, **declarations)(_never_run)


def _never_run(*args: Any, **kwargs: Any) -> None:
    raise RegistryError("an implementation whose package is missing is never run")


def _on_devices(name: str, what: str, value: bool | Sequence[str], devices: tuple[str, ...]) -> tuple[str, ...]:
    """A per-device declaration: True (every declared device), False, or the devices named."""
    if isinstance(value, bool):
        return devices if value else ()
    chosen = (value,) if isinstance(value, str) else tuple(value)
    unknown = [d for d in chosen if d not in devices]
    if unknown:
        raise RegistryError(f"implementation {name!r}: {what} names devices {unknown} it does not declare")
    return chosen


def _domain(name: str, domain: dict[str, DomainPredicate]) -> tuple[tuple[str, DomainPredicate], ...]:
    if not isinstance(domain, dict) or not all(isinstance(k, str) and k and callable(v) for k, v in domain.items()):
        raise RegistryError(f"implementation {name!r}: domain must map requirement names to predicates "
                            f"(callables taking the problem)")
    return tuple(domain.items())


def _dtype_map(name: str, what: str, mapping: dict[str, str]) -> dict[str, str]:
    unknown = [d for d in list(mapping) + list(mapping.values()) if d not in DTYPES]
    if unknown:
        raise RegistryError(f"implementation {name!r}: unknown dtypes {unknown} in {what}")
    return dict(mapping)


def _check_declaration(name: str, dims: tuple, devices: tuple, dtypes: tuple) -> None:
    if not name or not isinstance(name, str):
        raise RegistryError(f"implementation name must be a non-empty string, got {name!r}")
    if not dims or not set(dims) <= {1, 2, 3}:
        raise RegistryError(f"implementation {name!r}: dims must be a non-empty subset of (1, 2, 3), got {dims}")
    if not devices or not set(devices) <= set(KNOWN_DEVICES):
        raise RegistryError(f"implementation {name!r}: devices must be a non-empty subset of "
                            f"{KNOWN_DEVICES}, got {devices}")
    unknown = [d for d in dtypes if d not in DTYPES]
    if not dtypes or unknown:
        raise RegistryError(f"implementation {name!r}: unknown dtypes {unknown or dtypes}; "
                            f"known: {', '.join(DTYPES)}")


def _source_of(fn: Callable) -> str:
    try:
        return f"{inspect.getsourcefile(fn)}:{fn.__code__.co_firstlineno}"
    except (TypeError, AttributeError):
        return getattr(fn, "__module__", "?")


def all_implementations() -> list[Implementation]:
    """Every registered implementation, usable here or not, in registration order."""
    return list(_REGISTRY.values())


def modules_registered_since(stamp: int) -> list[str]:
    """The modules (other than the built-ins) that registered an implementation after ``stamp``
    (``time.monotonic_ns()``): a pytest session's own, such as the user's conftest.py or a module it
    imports, as against those an earlier session in the same interpreter left registered."""
    return list(dict.fromkeys(impl.module for impl in _REGISTRY.values()
                              if impl.registered_at > stamp and not impl.builtin))


def available(plugins: Sequence[str] | None = None) -> list[Implementation]:
    """The registered implementations usable on this machine: the built-ins and those of ``plugins``
    (module names :func:`load_plugin` returned), or every registered one when ``plugins`` is None."""
    chosen = None if plugins is None else set().union(*(_BY_MODULE.get(module, set()) for module in plugins))
    return [impl for impl in _REGISTRY.values() if impl.available and (
        chosen is None or impl.builtin or impl.name in chosen)]


def get(name: str) -> Implementation:
    """The implementation called ``name``, or a one-line error that lists the registered ones."""
    if name not in _REGISTRY:
        raise RegistryError(f"unknown implementation {name!r}; available: "
                            f"{', '.join(i.name for i in available()) or 'none'}")
    return _REGISTRY[name]


def select(names: Sequence[str], plugins: Sequence[str] = ()) -> list[Implementation]:
    """The usable implementations named, among the built-ins and those of ``plugins`` (all usable
    ones when ``names`` is empty). Implementations other plugins registered in this process (an
    earlier run in the same interpreter, a module a test imported) are not selected."""
    pool = {impl.name: impl for impl in available(plugins)}
    if not names:
        return list(pool.values())
    chosen = []
    for name in dict.fromkeys(names):
        if name not in pool:
            reason = _REGISTRY[name].unavailable_reason if name in _REGISTRY and not _REGISTRY[name].available \
                else None
            problem = f"is not usable here ({reason})" if reason else "is not registered by the built-ins or " \
                "the --impl-module plugins given"
            if name not in _REGISTRY:
                problem = "is unknown"
            raise RegistryError(f"implementation {name!r} {problem}; available: {', '.join(pool) or 'none'}")
        chosen.append(pool[name])
    return chosen


ADAPTER_GROUP = "convt_conformance.implementations"  # entry points of packages that ship their own adapter


def adapter_modules() -> list[str]:
    """The modules that installed packages declare in the entry point group ``convt_conformance.implementations``
    (``my-framework = "my_framework.convt_adapter"``): each is loaded like an ``--impl-module``."""
    return [entry.module for entry in entry_points(group=ADAPTER_GROUP)]


class PluginError(RuntimeError):
    """A plugin module that could not be imported; the message is one line naming it."""


def load_plugin(spec: str) -> str:
    """Import a plugin module given as a file path (``my_kernels.py``) or a dotted module name; its
    ``@register`` decorators add its implementations. Returns the module's name, which
    :func:`select` takes to choose among them."""
    path = Path(spec)
    try:
        if spec.endswith(".py") or path.exists():
            return _import_file(path)
        return importlib.import_module(spec).__name__
    except PluginError:
        raise
    except BaseException as exc:  # a plugin may raise anything, SystemExit included
        detail = str(exc).strip().splitlines()
        raise PluginError(f"plugin {spec!r} failed to import: {type(exc).__name__}"
                          f"{': ' + detail[0] if detail else ''}") from exc


_PROBE = """
import sys
from convt_conformance.impls.registry import load_plugin
for spec in sys.argv[1:]:
    print(spec, flush=True)
    try:
        load_plugin(spec)
    except BaseException:  # an ordinary failure is reported by the importing process itself
        pass
"""


def probe_plugins(specs: Sequence[str]) -> None:
    """Import the plugins, in order, in a throwaway interpreter first: one whose import kills the process
    (a segfault or abort in native code, or two frameworks whose native libraries conflict) becomes a
    :class:`PluginError` naming it, instead of the end of the run with a raw traceback."""
    stamps = tuple((spec, _stamp(spec)) for spec in specs)
    if stamps:
        _probe(stamps)


def _stamp(spec: str) -> int | None:
    try:
        return Path(spec).stat().st_mtime_ns
    except OSError:
        return None


@functools.cache  # once per set of plugin files as they are now: a test session runs many gates
def _probe(stamps: tuple[tuple[str, int | None], ...]) -> None:
    specs = [spec for spec, _ in stamps]
    path = os.pathsep.join([entry for entry in sys.path if entry] + [os.environ.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", _PROBE, *specs], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": path})
    if done.returncode == 0:
        return
    started = done.stdout.split()
    culprit = started[-1] if started else specs[0]
    before = started[:-1]
    how = f"ended the interpreter ({_exit_name(done.returncode)})"
    if before:
        raise PluginError(f"plugin {culprit!r} {how} on import after {', '.join(map(repr, before))}; if each "
                          f"imports on its own, their native libraries conflict: run them in separate runs")
    raise PluginError(f"plugin {culprit!r} {how} on import")


def _exit_name(code: int) -> str:
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"


def _import_file(path: Path) -> str:
    if not path.is_file():
        raise PluginError(f"plugin {str(path)!r} failed to import: no such file")
    module_name = f"convt_plugin_{abs(hash(str(path.resolve())))}"
    if module_name in sys.modules:
        return module_name
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise PluginError(f"plugin {str(path)!r} failed to import: not a Python module")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module_name
