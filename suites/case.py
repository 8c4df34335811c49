"""What a parametrized test checks: one implementation on one device in one dtype."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

from convt_conformance import spec
from convt_conformance.impls import Implementation

from . import oracles
from .limits import GATE_CAPS, Caps


@dataclass(frozen=True)
class Case:
    """One implementation on one device in one dtype."""

    impl: Implementation
    device: str
    dtype_name: str
    caps: Caps = GATE_CAPS  # how large the model-size search draws (the run's profile decides)

    @property
    def dtype(self) -> torch.dtype:
        return spec.DTYPES[self.dtype_name]

    @property
    def id(self) -> str:
        return f"{self.impl.name}-{self.device}-{self.dtype_name}"

    def __repr__(self) -> str:
        return f"Case({self.id!r})"

    def _repr_pretty_(self, printer, cycle: bool) -> None:  # Hypothesis' failure printout
        printer.text(repr(self))

    @cached_property  # asked for several times an example
    def precision(self) -> oracles.Precision:
        """What the implementation declares about its arithmetic in this dtype on this device."""
        accumulation = self.impl.accumulation.get(self.dtype_name)
        products = self.impl.products.get(self.dtype_name)
        return oracles.precision_of(self.dtype, tf32=self.impl.uses_tf32(self.device),
                                    accumulation=spec.DTYPES[accumulation] if accumulation else None,
                                    products=spec.DTYPES[products] if products else None,
                                    algorithm=self.impl.algorithm_for(self.dtype_name))
