"""Default time limits of a gate run (no torch here: the plugin's options read them in every pytest session)."""

# Generous on purpose: a slow but correct kernel on a large corpus problem (192 channels, 5x5 taps) under
# a loaded machine must never be reported as hanging; set --call-timeout lower to shrink hangs faster.
DEFAULT_CALL_TIMEOUT = 60.0
# A hang found in the gate costs one full per-call limit; shrinking it is capped at this many seconds.
DEFAULT_HANG_SHRINK_SECONDS = 60.0
# An implementation that compiles per shape (fixed_geometries=True) replays this many corpus entries per dtype,
# historical bugs first: each stored problem is a new shape and costs its own compilations.
CORPUS_COMPILE_BUDGET = 4
