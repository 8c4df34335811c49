"""Run an implementation in a worker process, so that a crash (segfault, abort, the OOM killer), a hang,
or an exit becomes a finding (check ``crash`` or ``timeout``) on that problem instead of the end of the
run. The worker is restarted on the next call; Hypothesis then shrinks the problem like any failure.

Workers are forked from a forkserver that has imported torch once: restarts take milliseconds, and the
parent's OpenMP threads are never forked.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import functools
import gc
import math
import multiprocessing
import multiprocessing.forkserver
import os
import select
import signal
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NamedTuple

import torch

import convt_conformance

from . import oracles
from .limits import DEFAULT_CALL_TIMEOUT

_CONTEXT = multiprocessing.get_context("forkserver")
# What the fork server imports once for every worker; contained adapters add their framework (``preload=``)
_BASE_PRELOAD = ("torch", "convt_conformance.impls")
_PRELOAD = list(_BASE_PRELOAD)
# Where convt_conformance is imported from (a checkout's root, or site-packages): the fork server needs it
_IMPORT_ROOT = Path(convt_conformance.__file__).resolve().parents[1]
# Once a worker has answered, a call gets ADAPTIVE_MARGIN times the time warm answers predict (the slowest
# answer, or the largest problem's time scaled up to this problem's products, whichever is longer), never
# less than ADAPTIVE_FLOOR nor more than the full limit: a hang is found in seconds, and a correct call
# would have to run 50 times slower than anything seen (and past 10 s) to be taken for one.
ADAPTIVE_MARGIN = 50.0
ADAPTIVE_FLOOR = 10.0
# Starting a worker is not part of any call and has limits of its own. A child forked from a fork server
# whose preloaded frameworks run threads can, rarely, deadlock before it gets going (a lock some thread
# held at the fork): it says it has begun once forked, with torch and the project imported, which
# takes milliseconds, so a child silent for BOOT_TIMEOUT is stuck and is replaced. Importing the plugins
# (a framework may take seconds on a loaded machine) then has START_TIMEOUT. Only START_ATTEMPTS failed
# starts in a row make the call a crash.
BOOT_TIMEOUT = 15.0
START_TIMEOUT = 120.0
START_ATTEMPTS = 3
# Once a hang is found, Hypothesis shrinks it by trying smaller problems; each still-hanging candidate
# costs a whole per-call limit. While shrinking, a candidate counts as hanging after this floor or 20x
# the slowest answer the implementation has given, whichever is longer (the final replay of the
# minimized problem gets the adaptive limit again, so nothing is called hung on the short one alone).
HANG_SHRINK_FLOOR = 5.0
# A worker waiting for its next call, and a caller waiting for an answer, poll for this long before they
# sleep: a small kernel answers within it, and neither process pays a wake-up (nor runs on cold caches).
SPIN_SECONDS = 0.002


class _Arrivals:
    """Waits for data on one connection: polls its descriptor for up to SPIN_SECONDS, then sleeps in
    ``poll``. (``Connection.poll`` builds a selector on every call, which costs more than a small kernel's
    answer takes to arrive.)"""

    def __init__(self, connection: Connection) -> None:
        self.poller = select.poll()
        self.poller.register(connection.fileno(), select.POLLIN)

    def wait(self, timeout: float | None) -> bool:
        """Whether data (or the end of the stream) arrives within ``timeout`` seconds (None: any time)."""
        spin_until = time.perf_counter() + (SPIN_SECONDS if timeout is None else min(SPIN_SECONDS, timeout))
        while time.perf_counter() < spin_until:
            if self.poller.poll(0):
                return True
            os.sched_yield()  # a process with real work on this core goes first
        rest = None if timeout is None else max(0, math.ceil((timeout - SPIN_SECONDS) * 1000))
        return bool(self.poller.poll(rest))


class ContainmentError(Exception):
    """The implementation's process died or did not answer; ``check`` names the kind of finding, ``exit`` how
    the process ended (a signal's name, ``status N``; empty when it did not end) and ``output`` the last lines
    the worker printed (a native library often prints why it aborts)."""

    check = "crash"

    def __init__(self, message: str, exit: str = "", output: str = "") -> None:
        super().__init__(message)
        self.exit, self.output = exit, output

    def as_finding(self) -> oracles.Finding:
        return oracles.Finding(self.check, str(self), {"worker output": self.output} if self.output else {},
                               facets={"exit": self.exit} if self.exit else {})


class Crashed(ContainmentError):
    check = "crash"


class TimedOut(ContainmentError):
    check = "timeout"


class WorkerUnavailable(BaseException):
    """No worker process could be started for an implementation (a preload or a plugin that kills the process on
    import, a resource limit): the harness's fault, never a finding. A BaseException, so that no check takes it
    for the implementation's refusal and Hypothesis does not shrink it; the gate skips that implementation's
    other tests with this one line."""


class _ForkServerFailed(Exception):
    """The fork server could not start a worker (its cause says why)."""


class RaisedInWorker(Exception):
    """An ordinary exception raised by the contained implementation (a refusal, not a crash)."""


def _serve(connection: Connection, plugin_modules: list[str], name: str, threads: int, output: str) -> None:
    _print_into(output)
    torch.set_num_threads(threads)  # the caller's share of the cores (see --torch-threads)
    from convt_conformance import impls  # preloaded by the fork server

    connection.send(("begun",))  # the fork is behind it (see BOOT_TIMEOUT)
    for module in plugin_modules:
        impls.load_plugin(module)
    impl = impls.get(name)
    fn = impl.fn
    # torch, the plugins and their frameworks: a few hundred thousand objects that live as long as the worker,
    # frozen out of the collector's way (its full passes over them stalled a call for 0.1-0.2 s)
    gc.freeze()
    connection.send(("ready",))
    arrivals = _Arrivals(connection)
    while True:
        try:
            arrivals.wait(None)
            procedure, packed_args, packed_kwargs = connection.recv()
        except EOFError:
            return
        args, kwargs = _unpack(packed_args), _unpack(packed_kwargs)
        if procedure is None:
            call = fn
        elif procedure == "each":  # several calls, one round trip (see ContainedCall.each)
            def call(calls: list) -> list:
                return [fn(*call_args, **call_kwargs) for call_args, call_kwargs in calls]
        elif procedure == "attempts":  # several calls, each answered on its own (see ContainedCall.attempts)
            answers = [_answer(fn, call_args, call_kwargs, packed_call_args, packed_call_kwargs)
                       for (call_args, call_kwargs), (packed_call_args, packed_call_kwargs)
                       in zip(args[0], packed_args[0])]
            _send(connection, ("ok", answers, [], []))
            continue
        else:  # the gradient checks differentiate in here: autograd graphs do not cross processes
            from .gradients import PROCEDURES

            call = functools.partial(PROCEDURES[procedure], fn, flags=impl.extra.get("flags"))
        _send(connection, _answer(call, args, kwargs, packed_args, packed_kwargs))


def _print_into(path: str) -> None:
    """The worker's stdout and stderr (native libraries' included) go to ``path``, line by line, so that its
    last words survive it."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    for stream in (1, 2):
        os.dup2(descriptor, stream)
    os.close(descriptor)
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(line_buffering=True)


def last_lines(path: str | None, lines: int = 20, limit: int = 4000) -> str:
    """The last ``lines`` lines a worker printed (at most ``limit`` characters), or ""."""
    try:
        with open(path, "rb") as printed:
            printed.seek(0, os.SEEK_END)
            printed.seek(max(printed.tell() - limit, 0))
            text = printed.read().decode("utf-8", "replace")
    except (OSError, TypeError):
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def _send(connection: Connection, answer: tuple) -> None:
    """Send an answer; one that cannot be pickled (a result that is no tensor) is the call's exception."""
    try:
        connection.send(answer)
    except Exception as exc:  # noqa: BLE001  (pickling fails before a byte is written)
        connection.send(("raised", type(exc).__name__, str(exc)))


def _answer(fn: Any, args: tuple, kwargs: dict, packed_args: Any, packed_kwargs: Any) -> tuple:
    """One call's answer as the worker sends it: the result and the arguments it changed (a kernel that
    writes into its inputs must be seen doing so), or what it raised."""
    try:
        result = fn(*args, **kwargs)
        return "ok", _pack(_resolved(result)), _changed(packed_args, args), _changed(packed_kwargs, kwargs)
    except Exception as exc:  # noqa: BLE001  (any exception is the implementation's answer)
        return "raised", type(exc).__name__, str(exc)


class _Packed(NamedTuple):
    """A CPU tensor as plain bytes: its storage, dtype, size, strides and offset (layout kept exactly,
    stride-0 expansions included). Sent through the pipe as it is; torch's own transfer moves every
    tensor through a new shared-memory segment, which costs more than a small kernel call. (A named
    tuple: it is built and pickled several times a call, and costs a third of what a dataclass does.)"""

    dtype: str
    size: tuple[int, ...]
    stride: tuple[int, ...]
    offset: int
    data: bytes | None  # None: a tensor without data (a FakeTensor's storage is on the meta device)
    requires_grad: bool


_PLAIN = frozenset({int, float, bool, str, type(None)})


def _plain(value: Any) -> bool:
    """Whether ``value`` holds no tensor for certain: a number, string or None, or a plain tuple or
    list of them (most arguments: stride, padding and the like), which every walk below passes as it is."""
    kind = type(value)
    return kind in _PLAIN or ((kind is tuple or kind is list) and all(type(item) in _PLAIN for item in value))


def _pack(value: Any) -> Any:
    """``value`` with its CPU tensors packed (nested tuples, lists and dicts; CUDA tensors are left to
    torch's own inter-process transfer)."""
    if _plain(value):
        return value
    if isinstance(value, torch.Tensor):
        if value.device.type != "cpu" or value.is_sparse:
            return value
        tensor = value.detach().resolve_conj().resolve_neg() if value.is_conj() or value.is_neg() else value
        data = None if tensor.untyped_storage().device.type == "meta" else _storage_bytes(tensor)
        return _Packed(str(tensor.dtype).removeprefix("torch."), tuple(tensor.shape), tuple(tensor.stride()),
                       tensor.storage_offset(), data, value.requires_grad)
    if isinstance(value, (tuple, list)):
        return _rebuilt(value, [_pack(item) for item in value])
    if isinstance(value, dict):
        return {key: _pack(item) for key, item in value.items()}
    return value


def _rebuilt(value: tuple | list, items: list) -> tuple | list:
    """A tuple, named tuple or list of the same type holding ``items``."""
    return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)


def _storage_bytes(tensor: torch.Tensor) -> bytes:
    """Every byte of the (CPU) tensor's storage (a view's strides may reach anywhere in it), copied
    straight from its memory."""
    storage = tensor.untyped_storage()
    size = storage.nbytes()
    return ctypes.string_at(storage.data_ptr(), size) if size else b""


def _unpack(value: Any) -> Any:
    if _plain(value):
        return value
    if isinstance(value, _Packed):
        if value.data is None:  # shape, dtype and strides without values: memory nothing reads
            return torch.empty_strided(value.size, value.stride, dtype=getattr(torch, value.dtype)).requires_grad_(
                value.requires_grad)
        storage = torch.frombuffer(bytearray(value.data), dtype=torch.uint8).untyped_storage() if value.data \
            else torch.UntypedStorage(0)
        tensor = torch.empty(0, dtype=getattr(torch, value.dtype)).set_(storage, value.offset, value.size,
                                                                         value.stride)
        return tensor.requires_grad_() if value.requires_grad else tensor
    if isinstance(value, (tuple, list)):
        return _rebuilt(value, [_unpack(item) for item in value])
    if isinstance(value, dict):
        return {key: _unpack(item) for key, item in value.items()}
    return value


def _changed(packed: Any, unpacked: Any) -> list[tuple[int, _Packed]]:
    """The tensors among the arguments whose bytes the call changed, by their position, packed."""
    # only CPU tensors were packed: pair them with the CPU tensors they became, position by position
    before = _tensors_in(packed, _Packed)
    if not before:
        return []
    after = _tensors_in(unpacked, cpu_only=True)
    # a tensor sent without data (its storage was on the meta device) has no values to change
    return [(i, _pack(t)) for i, (was, t) in enumerate(zip(before, after))
            if was.data is not None and _storage_bytes(t) != was.data]


def _ensure_forkserver() -> None:
    """Start the forkserver with the project importable. Python 3.11's forkserver does not take the
    parent's sys.path, so run from another folder it silently failed to preload the implementations and every
    worker start paid that import (half a second) again."""
    _CONTEXT.set_forkserver_preload(_PRELOAD)
    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_IMPORT_ROOT), previous]))
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        if previous is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = previous


def _exit_name(code: int | None) -> str:
    """How a process ended, briefly: a signal's name or ``status N`` (empty when it did not end)."""
    if code is None:
        return ""
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"status {code}"


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "did not exit"
    return f"killed by {_exit_name(code)}" if code < 0 else f"exited with {_exit_name(code)}"


class ContainedCall:
    """A callable with the implementation's signature that runs it in a worker process."""

    def __init__(self, name: str, plugin_modules: list[str], timeout: float = DEFAULT_CALL_TIMEOUT) -> None:
        self.name, self.plugin_modules, self.timeout = name, list(plugin_modules), timeout
        self.process: Any = None
        self.exits: Any = None  # a poll of the process's sentinel
        self.connection: Connection | None = None
        self.arrivals: _Arrivals | None = None
        self.slowest = 0.0  # the longest a call has taken and still answered
        # what warm workers' answers took (a worker's first answer may include imports and initialization):
        self.warm_answers = 0
        self.slowest_warm = 0.0  # the longest
        self.largest = (1, 0.0)  # (products, seconds) of the largest problem (the longest, on ties)
        self.warm = False  # the current worker has answered a call (its first may import or compile)
        self.output: str | None = None  # the file its workers print into (see last_lines)
        # what a new worker's first answer took (its imports and initialization included), over every worker
        # this implementation has started: it survives restarts, so a worker restarted after a hang does not
        # get the full limit again for its first call
        self.first_answers = 0
        self.slowest_first = 0.0
        self.shrinking_a_hang = False  # set while Hypothesis shrinks a timeout: the short limit applies

    def limit(self, products: int = 1) -> float:
        """The per-call limit for a call that forms ``products`` products: the full one until a warm worker has
        answered once, then the adaptive one (see ADAPTIVE_MARGIN), for a restarted worker's first call too
        (with the start-up earlier workers took); while a hang is being shrunk, at most the short one. A hang
        thus costs the full limit once per implementation, not once per worker restart."""
        limit = self.timeout
        if self.warm_answers and (self.warm or self.first_answers):
            predicted = max(self.slowest_warm, self.largest[1] * products / self.largest[0])
            if not self.warm:  # a new worker's first call: its start-up too, as earlier workers showed it
                predicted = max(predicted, self.slowest_first)
            limit = min(limit, max(ADAPTIVE_FLOOR, ADAPTIVE_MARGIN * predicted))
        if self.shrinking_a_hang:
            limit = min(limit, max(HANG_SHRINK_FLOOR, 20 * self.slowest))
        return limit

    def _start(self) -> None:
        if self.output is None:
            descriptor, self.output = tempfile.mkstemp(prefix=f"convt-worker-{os.getpid()}-", suffix=".log")
            os.close(descriptor)
        why = ""
        for _ in range(START_ATTEMPTS):
            try:
                if self._started():
                    return
                why = f"each had {BOOT_TIMEOUT:g} s to begin and {START_TIMEOUT:g} s more to load its plugins"
            except _ForkServerFailed as exc:
                why = (f"the fork server, which imports {', '.join(_PRELOAD)}, could not start a process "
                       f"({type(exc.__cause__).__name__}: {exc.__cause__})")
            except (EOFError, OSError) as exc:  # it died on the way
                why = f"{type(exc).__name__}: {exc}".rstrip(": ")
            code = self._stop()
            if code is not None:
                why = f"its process {_describe_exit(code)} while starting"
        modules = ", ".join(self.plugin_modules + _PRELOAD[len(_BASE_PRELOAD):])
        printed = last_lines(self.output, lines=5, limit=1000).replace("\n", " | ")
        raise WorkerUnavailable(f"{self.name}: no worker process could be started ({START_ATTEMPTS} attempts; {why}); "
                                f"modules it imports: {modules or 'none'}"
                                + (f"; its last output: {printed}" if printed else ""))

    def _started(self) -> bool:
        """Start one worker; whether it said it was ready in time."""
        _ensure_forkserver()
        parent, child = _CONTEXT.Pipe()
        self.connection, self.arrivals, self.warm = parent, _Arrivals(parent), False
        process = _CONTEXT.Process(target=_serve, args=(child, self.plugin_modules, self.name,
                                                        torch.get_num_threads(), self.output), daemon=True)
        try:
            process.start()  # (a process that could not start is never kept: it cannot be stopped either)
        except Exception as exc:  # noqa: BLE001  (a dead fork server answers with EOFError, OSError, ...)
            raise _ForkServerFailed() from exc
        self.process = process
        child.close()
        self.exits = select.poll()  # the process's sentinel becomes readable when it ends
        self.exits.register(self.process.sentinel, select.POLLIN)
        # "begun", then "ready" once the plugins are loaded; EOFError if it died on the way
        if parent.poll(BOOT_TIMEOUT) and parent.recv() and parent.poll(START_TIMEOUT):
            parent.recv()
            return True
        return False

    def _stop(self) -> int | None:
        code = None
        if self.process is not None:
            if self.process.is_alive():
                self.process.kill()
            self.process.join(5)
            code = self.process.exitcode
        if self.connection is not None:
            self.connection.close()
        self.process, self.connection, self.arrivals = None, None, None
        return code

    def close(self) -> None:
        """Stop the worker process (a session ends; the next call would start a new one)."""
        self._stop()
        if self.output is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.output)
            self.output = None

    def __call__(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.run(None, *args, **kwargs)

    def each(self, calls: list[tuple[tuple, dict]]) -> list[torch.Tensor]:
        """The results of several calls ``(args, kwargs)``, made one after the other in the worker and
        sent in one round trip (a check that calls twice pays the process switch once); the first
        that raises, crashes or hangs ends them all."""
        return self.run("each", calls)

    def attempts(self, calls: list[tuple[tuple, dict]]) -> list[Any] | None:
        """Several calls ``(args, kwargs)`` that may each be refused, made one after the other in the worker
        and answered in one round trip: each one's result, or the exception it raised (a refusal, as
        :class:`RaisedInWorker`). None if the worker crashed or hung on one of them, or an answer could not
        be sent: the caller then makes each call on its own, so the one at fault is found alone. (None,
        without a call, while a hang is shrunk: each candidate would pay the limit twice.)"""
        if self.shrinking_a_hang:
            return None
        try:
            reply = self._round_trip("attempts", (calls,), (_pack((calls,)), {}))
        except ContainmentError:
            return None
        if reply[0] != "ok":
            return None
        answers = []
        for (args, kwargs), answer in zip(calls, reply[1]):
            try:
                answers.append(self._delivered(answer, args, kwargs))
            except RaisedInWorker as refusal:
                answers.append(refusal)
        return answers

    def run(self, procedure: str | None, *args: Any, **kwargs: Any) -> Any:
        """Call the implementation, or run a procedure of ``suites.gradients`` on it, in the worker."""
        return self._delivered(self._round_trip(procedure, args, (_pack(args), _pack(kwargs))), args, kwargs)

    def _round_trip(self, procedure: str | None, args: tuple, packed: tuple) -> tuple:
        """Send one call (packed) and wait for its answer, within the limit for its size."""
        try:
            if self.process is None or self.exits.poll(0):  # (cheaper than is_alive, which builds a selector)
                self._stop()
                self._start()
            self.connection.send((procedure, *packed))
            products = sum(_products(call) for call, _ in args[0]) if procedure in ("each", "attempts") \
                else _products(args)
            started, limit = time.monotonic(), self.limit(products)
            if not self.arrivals.wait(limit):
                self._stop()
                raise TimedOut(f"{self.name} gave no result within {limit:g} s (per-call limit"
                               f"{'' if limit == self.timeout else ' for this problem'})",
                               output=last_lines(self.output))
            reply = self.connection.recv()
            took = time.monotonic() - started
            if self.warm:
                self.slowest_warm, self.largest = max(self.slowest_warm, took), max(self.largest, (products, took))
                self.warm_answers += 1
            else:
                self.slowest_first, self.first_answers = max(self.slowest_first, took), self.first_answers + 1
            self.slowest, self.warm = max(self.slowest, took), True
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError):
            code = self._stop()
            raise Crashed(f"{self.name}'s process {_describe_exit(code)} during the call", _exit_name(code),
                          last_lines(self.output)) from None
        return reply

    @staticmethod
    def _delivered(reply: tuple, args: tuple, kwargs: dict) -> Any:
        """The call's result (its changes to the arguments made to them here too), or its refusal raised."""
        if reply[0] == "raised":
            raise RaisedInWorker(f"{reply[1]}: {reply[2]}")
        _, result, changed_args, changed_kwargs = reply
        for sent, changed in ((args, changed_args), (kwargs, changed_kwargs)):
            originals = _tensors_in(sent, torch.Tensor, cpu_only=True) if changed else []
            for position, packed in changed:
                original, after = originals[position], _unpack(packed)
                if original.shape == after.shape:
                    with torch.no_grad():
                        original.copy_(after)
        return _unpack(result)


def _products(args: tuple) -> int:
    """How many products a transposed convolution of these arguments forms: input elements times the
    taps and output channels each one meets (the first two tensors are the input and the weight, for
    the forward call and the gradient procedures alike)."""
    leading = args[:2]
    tensors = leading if all(isinstance(t, torch.Tensor) for t in leading) else _tensors_in(args)  # the usual call
    if len(tensors) < 2:
        return 1
    x, w = tensors[:2]
    return max(1, x.numel()) * max(1, w.numel() // w.shape[0] if w.dim() and w.shape[0] else 1)


def _tensors_in(value: Any, kind: type = torch.Tensor, cpu_only: bool = False) -> list:
    """The tensors (or packed tensors) in nested tuples, lists and dicts, in order."""
    if _plain(value):
        return []
    if isinstance(value, kind):
        return [] if cpu_only and value.device.type != "cpu" else [value]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in _tensors_in(item, kind, cpu_only)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _tensors_in(item, kind, cpu_only)]
    return []


def _resolved(value: Any) -> Any:
    """Conjugate and negative views materialized: torch's inter-process tensor transfer drops those
    bits (a conj view of 1-2j arrives as 1+2j), and autograd returns them for complex gradients."""
    if isinstance(value, torch.Tensor):
        return value.resolve_conj().resolve_neg()
    if isinstance(value, (tuple, list)):
        return _rebuilt(value, [_resolved(item) for item in value])
    if isinstance(value, dict):
        return {key: _resolved(item) for key, item in value.items()}
    return value


def trusted_in_process(impl: Any) -> bool:
    """Whether ``--contain plugins`` (the default) runs ``impl`` in-process: the project's own
    implementations do; plugins and third-party frameworks, whose native code may abort, do not."""
    return impl.builtin and not impl.extra.get("third_party")


def contained(impl: Any, plugin_modules: list[str], timeout: float = DEFAULT_CALL_TIMEOUT) -> Any:
    """``impl`` with its function run in a worker process. A framework it declares with ``preload=`` is
    imported once by the fork server (when it has not started yet), not again at each worker restart."""
    if impl.extra.get("preload") and impl.extra["preload"] not in _PRELOAD:
        _PRELOAD.append(impl.extra["preload"])
    return dataclasses.replace(impl, fn=ContainedCall(impl.name, plugin_modules, timeout))
