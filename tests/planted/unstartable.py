"""Implementations whose worker process cannot be started: harness faults, which the gate must report in one
line and never as findings against the implementation."""

from __future__ import annotations

import multiprocessing
import os

from convt_conformance import register
from convt_conformance.impls.naive import conv_transpose as naive

if multiprocessing.parent_process() is not None:  # imported in a worker: this library cannot load there
    print("unstartable: libexample.so: cannot load here", flush=True)
    os._exit(3)

register("dies-on-import-in-its-worker", dtypes=("float32",), third_party=True)(naive)
register("dies-in-its-preload", dtypes=("float32",), third_party=True, preload="tests.planted.dying_preload")(naive)
