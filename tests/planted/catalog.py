"""Which check each planted bug must be caught by (the self-test and benchmarks/kill_rates.py)."""

from pathlib import Path

HERE = Path(__file__).parent
SIZE_MODULE = str(HERE / "size_bugs.py")
MODULES = (str(HERE / "oracle_bugs.py"), str(HERE / "fault_classes.py"), str(HERE / "custom_backward.py"),
           str(HERE / "shape_bugs.py"), str(HERE / "module_variants.py"), SIZE_MODULE)
CORRECT_MODULE = str(HERE / "correct_variants.py")

# planted bug -> (fault class in the bug history, section B, or the oracle it exists for; expected check)
EXPECTED = {
    "bug-shape-drops-output-padding": ("B2 output_padding dropped", "shape"),
    "bug-exact-group0-bias": ("B9 every group uses group 0's bias", "exact"),
    "bug-bound-tf32": ("B15 undeclared TF32 input rounding", "bound"),
    "bug-adjoint-unflipped-stride-dilation": ("B11 kernel not flipped (stride>1, dilation>1)", "adjoint"),
    "bug-errors-accepts-big-output-padding": ("B13 output_padding >= max(stride, dilation) accepted",
                                              "invalid-accepted"),
    "bug-errors-refuses-op-ge-stride": ("B13 refuses output_padding >= stride (ORT's domain)", "valid-refused"),
    "bug-robust-modifies-input": ("writes into its input (1x1 kernels)", "inputs-unmodified"),
    "bug-robust-assumes-contiguous": ("B18 assumes a contiguous weight", "layout"),
    "bug-robust-nan-through-padding": ("B16 NaN/Inf through structural zeros", "special-values"),
    "bug-robust-nondeterministic": ("B17 order-dependent result", "determinism"),
    "bug-b1-output-padding-zero-fill": ("B1 output_padding as zero fill", "exact"),
    "bug-b3-output-padding-as-input-padding": ("B3 output_padding as input padding", "shape"),
    "bug-b4-output-padding-on-the-wrong-side": ("B4 padding on the wrong side", "exact"),
    "bug-b5-dilated-extent": ("B5 dilated extent k+d-1", "shape"),
    "bug-b6-dilation-ignored-with-stride": ("B6 dilation ignored when strided", "exact"),
    "bug-b7-forward-semantics-3d": ("B7 transposed flag lost (3d)", "shape"),
    "bug-b8-channel-swap": ("B8 in/out channel swap (Cin != Cout)", "exact"),
    "bug-b9-groups-interleaved": ("B9 groups interleaved", "exact"),
    "bug-b10-padding-as-input-padding": ("B10 padding as input pre-pad", "shape"),
    "bug-b12-k1-fast-path": ("B12 k=1 fast path ignores stride", "exact"),
    "bug-b13-accepts-empty-output": ("B13 output-size check missing", "invalid-accepted"),
    "bug-garbage-bias-broadcast": ("a bias of the wrong length broadcast into extra channels", "invalid-accepted"),
    "bug-garbage-empty-input": ("an empty input axis answered with memory never written", "invalid-accepted"),
    "bug-b15-half-accumulation": ("B15 half-precision accumulation", "bound"),
    "bug-b20-kernel-beyond-input": ("B20 col2im drops taps past the input", "exact"),
    "bug-crop-whole-taps": ("padding that crops whole taps clamped (output shifted)", "exact"),
    "bug-channel-block-tail": ("tail of an 8-channel block computed with the wrong weights", "exact"),
    "bug-undeclared-transform": ("an FFT algorithm declared direct", "bound"),
    "bug-compiled-crop-and-output-padding": ("a per-shape compiled kernel wrong where taps are cropped and "
                                             "output_padding >= stride", "exact"),
    "bug-transform-half-spectra": ("a transform kernel keeping its spectra in the half type", "bound"),
    "bug-transform-declared-half-sums": ("half-precision sums hidden behind a transform declaration", "bound"),
    "bug-grad-k1-dense-grad-output": ("B12 in the backward (#63314): 1x1 grad_input reads grad_output densely",
                                      "grad-exact"),
    "bug-grad-half-output-padding-refused": ("#23545 half backward refused when output_padding > 0", "grad-exact"),
    "bug-grad-weight-dilation-ignored": ("B6 in grad_weight: dilation ignored when strided", "grad-exact"),
    "bug-grad-bias-first-sample": ("grad_bias summed over the first sample only", "grad-exact"),
    "bug-grad-output-assumed-contiguous": ("B18 for grad_output: its memory read as contiguous", "grad-bound"),
    "bug-double-backward-expanded-weight": ("#4500 double backward loses an expanded weight", "double-backward"),
    "bug-grad-nondeterministic": ("B17 in the backward: grad_weight differs between identical calls",
                                  "grad-determinism"),
    "bug-grad-input-zero-kernel-past-input": ("grad_input zero where the kernel reaches past a cropped input (a "
                                              "oneDNN bfloat16 defect)", "grad-exact"),
    "bug-meta-swapped-weight-dims": ("#172711 a meta kernel reads Cout from weight.shape[0]", "shape"),
    "bug-meta-drops-output-padding": ("#98129 a shape function drops output_padding", "shape"),
    "bug-meta-transposed-strides": ("a shape function's result laid out unlike eager's", "shape"),
    "bug-module-unbatched-output-size": ("#75889 output_size counted as if always batched", "output-size"),
    "bug-module-output-size-ignores-dilation": ("#14272 output_size without the dilation", "output-size"),
    "bug-drops-channels-past-64": ("a blocked kernel drops the input channels past a 64-channel block", "model-size"),
    "bug-wrong-past-small-sizes": ("1% off past kernel 5, stride 4 or batch 3 (paths small problems never reach)",
                                   "model-size"),
    "bug-blocked-tail-1024": ("a 1000+-channel path drops its last, partial 64-channel block", "model-size"),
    "bug-transform-percent-off": ("a transform kernel 0.5% off: within the worst-case allowance at model sizes",
                                  "model-size"),
}
# Found only by the scale profile's 2^31-element problems (tests/test_model_sizes.py), not by a search.
SCALE_ONLY = {"bug-index-overflow-32bit": ("pytorch#84488 a 32-bit index wraps past 2^31 elements", "model-size")}
CUSTOM_BACKWARD_MODULE = str(HERE / "custom_backward.py")
MODULE_VARIANTS_MODULE = str(HERE / "module_variants.py")
# correct kernels computed the way large-problem kernels are (in SIZE_MODULE)
CORRECT_AT_SIZE = ("correct-blocked-64", "correct-split-k")
CORRECT = ("correct-reversed-order", "correct-float64-rounded-once", "correct-autograd-of-convolution",
           "correct-bias-after-rounding", "correct-tf32-declared", "correct-products-rounded", "correct-fft",
           "correct-3d-only", "correct-bfloat16-only", "correct-complex-only")
