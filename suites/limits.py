"""Default limits of a gate run: time, and the model-size search's sizes (no torch here: the plugin's options
read them in every pytest session)."""

from dataclasses import dataclass

# Generous on purpose: a slow but correct kernel on a large corpus problem (192 channels, 5x5 taps) under
# a loaded machine must never be reported as hanging; set --call-timeout lower to shrink hangs faster.
DEFAULT_CALL_TIMEOUT = 60.0
# A hang found in the gate costs one full per-call limit; shrinking it is capped at this many seconds.
DEFAULT_HANG_SHRINK_SECONDS = 60.0
# An implementation that compiles per shape (fixed_geometries=True) replays this many corpus entries per dtype,
# historical bugs first: each stored problem is a new shape and costs its own compilations.
CORPUS_COMPILE_BUDGET = 4


@dataclass(frozen=True)
class Caps:
    """How large a drawn problem may be: multiply-adds, elements of any one tensor, kernel taps (a plain
    per-tap kernel pays for each tap in its own call)."""

    work: int
    elements: int
    taps: int


# The default gate: a drawn problem costs milliseconds to a few tenths of a second on a laptop core, forward
# and backward. The scale profile: seconds.
GATE_CAPS = Caps(work=2**23, elements=2**21, taps=256)
SCALE_CAPS = Caps(work=2**36, elements=2**28, taps=4096)
