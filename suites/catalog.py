"""Real transposed-convolution layers, at the sizes their models run them.

Each :class:`Layer` names its model, where the layer is defined, and its full-size shapes for inference and
(where the source states one) for a training batch. Vendor libraries pick kernels by channel count,
kernel size and stride (channel blocking, brgemm, Winograd, FFT), so the default gate checks every layer
with its own channels, kernel, stride, padding and groups on a short input (:meth:`Layer.gate_problem`);
the ``scale`` profile checks the full sizes.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

from .problem import Problem


@dataclass(frozen=True)
class Layer:
    """One layer: ``in_channels`` and ``out_channels`` are the layer's totals per sample; with
    ``groups_from_batch`` (StyleGAN2's modulated convolution) the batch folds into the channels and becomes
    the groups, and the call's own batch is 1."""

    name: str
    model: str
    source: str  # the paper and the file that defines the layer
    in_channels: int
    out_channels: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    inference: tuple[int, tuple[int, ...]]  # (batch, input length per axis)
    training: tuple[int, tuple[int, ...]] | None = None
    groups: int = 1
    bias: bool = True
    groups_from_batch: bool = False

    @property
    def dims(self) -> int:
        return len(self.kernel)

    def problem(self, use: str, dtype: str) -> Problem:
        """The layer as a problem: ``use`` is ``inference``, ``training`` or ``gate`` (the layer's channels,
        kernel, stride, padding and groups, a batch of at most 2, on an input just long enough that some output
        positions sum every tap of their stride phase)."""
        if use == "gate":
            batch, size = self.inference
            batch = min(batch, 2)
            size = tuple(min(L, max(-(-k // s), 1)) for L, k, s in zip(size, self.kernel, self.stride))
        else:
            batch, size = getattr(self, use)
        if self.groups_from_batch:  # (1, batch * C, ...): one group per sample
            groups, n, cin = batch, 1, self.in_channels * batch
        else:
            groups, n, cin = self.groups, batch, self.in_channels
        cout_g = self.out_channels // self.groups
        zeros = (0,) * self.dims
        return Problem(input_shape=(n, cin) + size, weight_shape=(cin, cout_g) + self.kernel,
                       bias=self.bias, stride=self.stride, padding=self.padding, output_padding=zeros,
                       dilation=(1,) * self.dims, groups=groups, dtype=dtype, seed=zlib.crc32(self.name.encode()))

    def uses(self) -> tuple[str, ...]:
        return ("inference", "training") if self.training else ("inference",)


def _layer(name: str, model: str, source: str, cin: int, cout: int, k: int, s: int, p: int, dims: int,
           inference: tuple[int, tuple[int, ...]], training: tuple[int, tuple[int, ...]] | None = None,
           **more) -> Layer:
    return Layer(name, model, source, cin, cout, (k,) * dims, (s,) * dims, (p,) * dims, inference, training, **more)


PYTORCH_EXAMPLES_DCGAN = "Radford et al. 2016 (arXiv:1511.06434); github.com/pytorch/examples dcgan/main.py"
PIX2PIX = "Isola et al. 2017 (arXiv:1611.07004); github.com/junyanz/pytorch-CycleGAN-and-pix2pix models/networks.py"
UNET = "Ronneberger et al. 2015 (arXiv:1505.04597); github.com/milesial/Pytorch-UNet unet/unet_parts.py"
FCN = "Long et al. 2015 (arXiv:1411.4038); github.com/shelhamer/fcn.berkeleyvision.org voc-fcn*/net.py"
HIFIGAN = "Kong et al. 2020 (arXiv:2010.05646); github.com/jik876/hifi-gan models.py, config_v1.json"
ENCODEC = "Défossez et al. 2022 (arXiv:2210.13438); github.com/facebookresearch/encodec encodec/modules/seanet.py"
DAC = "Kumar et al. 2023 (arXiv:2306.06546); github.com/descriptinc/descript-audio-codec dac/model/dac.py"
DEMUCS = "Défossez et al. 2019 (arXiv:1911.13254); github.com/facebookresearch/demucs (v2) demucs/model.py"
UNET3D = "Çiçek et al. 2016 (arXiv:1606.06650), the up-convolution of the synthesis path"
STYLEGAN2 = ("Karras et al. 2020 (arXiv:1912.04958); github.com/NVlabs/stylegan2-ada-pytorch "
             "training/networks.py modulated_conv2d")
MASK_RCNN = ("He et al. 2017 (arXiv:1703.06870); github.com/pytorch/vision "
             "torchvision/models/detection/mask_rcnn.py MaskRCNNPredictor")

LAYERS: tuple[Layer, ...] = (
    _layer("dcgan-512-256", "DCGAN generator (64x64 images)", PYTORCH_EXAMPLES_DCGAN, 512, 256, 4, 2, 1, 2,
           (1, (4, 4)), (64, (4, 4)), bias=False),
    _layer("pix2pix-1024-512", "pix2pix U-Net 256 generator, decoder", PIX2PIX, 1024, 512, 4, 2, 1, 2,
           (1, (8, 8)), bias=False),
    _layer("unet-1024-512", "U-Net, first up-convolution (572x572 tile)", UNET, 1024, 512, 2, 2, 0, 2, (1, (28, 28))),
    _layer("fcn32s-upscore", "FCN-32s upsampling (bilinear, per class)", FCN, 21, 21, 64, 32, 0, 2,
           (1, (16, 16)), groups=21, bias=False),
    _layer("fcn8s-upscore8", "FCN-8s final upsampling (bilinear, per class)", FCN, 21, 21, 16, 8, 0, 2,
           (1, (64, 64)), groups=21, bias=False),
    _layer("hifigan-512-256", "HiFi-GAN V1 / MelGAN generator, first upsampling", HIFIGAN, 512, 256, 16, 8, 4, 1,
           (1, (862,)), (16, (32,))),
    _layer("hifigan-256-128", "HiFi-GAN V1 / MelGAN generator, second upsampling", HIFIGAN, 256, 128, 16, 8, 4, 1,
           (1, (6896,)), (16, (256,))),
    _layer("encodec-512-256", "EnCodec 24 kHz decoder, first block", ENCODEC, 512, 256, 16, 8, 0, 1,
           (1, (750,)), (64, (75,))),
    _layer("encodec-256-128", "EnCodec 24 kHz decoder, second block", ENCODEC, 256, 128, 10, 5, 0, 1,
           (1, (6000,)), (64, (600,))),
    _layer("dac-1536-768", "DAC 44 kHz decoder, first block", DAC, 1536, 768, 16, 8, 4, 1, (1, (862,))),
    _layer("demucs-2048-1024", "Demucs (v2) decoder, deepest layer", DEMUCS, 2048, 1024, 8, 4, 0, 1, (1, (107,))),
    _layer("unet3d-512-512", "3D U-Net, deepest up-convolution (132x132x116 tile)", UNET3D, 512, 512, 2, 2, 0, 3,
           (1, (9, 9, 7))),
    _layer("stylegan2-512-512", "StyleGAN2 config F, 64x64 block (groups = batch)", STYLEGAN2, 512, 512, 3, 2, 0, 2,
           (4, (32, 32)), (32, (32, 32)), groups_from_batch=True, bias=False),
    _layer("maskrcnn-256-256", "Mask R-CNN mask head (batch = regions of interest)", MASK_RCNN, 256, 256, 2, 2, 0, 2,
           (100, (14, 14)), (256, (14, 14))),
)
BY_NAME = {layer.name: layer for layer in LAYERS}
assert len(BY_NAME) == len(LAYERS)
# For an implementation that compiles each new shape: four layers that span 1d, 2d and 3d, a long kernel and a
# large stride, 1024 blocked channels and a depthwise layer (each layer is a compilation; the scale profile
# checks them all).
SPANNING = ("hifigan-512-256", "pix2pix-1024-512", "fcn8s-upscore8", "unet3d-512-512")
assert set(SPANNING) <= set(BY_NAME)


@dataclass(frozen=True)
class Boundary:
    """A problem one of whose tensors crosses 2^31 elements, where a signed 32-bit index wraps
    (pytorch#84488: a Conv3d silently wrong past it on oneDNN)."""

    name: str
    what: str
    input_shape: tuple[int, ...]
    weight_shape: tuple[int, ...]
    stride: int

    def problem(self, dtype: str) -> Problem:
        return Problem(input_shape=self.input_shape, weight_shape=self.weight_shape, bias=True, stride=(self.stride,),
                       padding=(0,), output_padding=(0,), dilation=(1,), groups=1, dtype=dtype,
                       seed=zlib.crc32(self.name.encode()))


BOUNDARIES = (
    Boundary("int32-output", "an output of 2^31 + 1 elements", (1, 1, 2**27 + 1), (1, 1, 1), 16),
    Boundary("int32-input", "an input of 2^31 + 2^16 elements", (1, 2, 2**30 + 2**15), (2, 1, 1), 1),
    Boundary("int32-weight", "a weight of 2^31 + 2^16 elements", (1, 2**16, 1), (2**16, 2**15 + 1, 1), 1),
)


@dataclass(frozen=True)
class Entry:
    """One problem ``test_catalog`` checks: a layer at one use, or a 2^31 boundary."""

    id: str
    what: str
    make: Layer | Boundary
    use: str = "boundary"

    @property
    def dims(self) -> int:
        return self.make.dims if isinstance(self.make, Layer) else 1

    def problem(self, dtype: str) -> Problem:
        return self.make.problem(self.use, dtype) if isinstance(self.make, Layer) else self.make.problem(dtype)


def entries(scale: bool, compiles_per_shape: bool = False) -> list[Entry]:
    """The default gate's entries (every layer on a short input; the :data:`SPANNING` four for an implementation
    that compiles per shape), or the scale profile's (every layer at its inference and training sizes, and the
    2^31 boundaries)."""
    if not scale:
        return [Entry(layer.name, layer.model, layer, "gate") for layer in LAYERS
                if not compiles_per_shape or layer.name in SPANNING]
    return [Entry(f"{layer.name}-{use}", f"{layer.model}, {use}", layer, use) for layer in LAYERS
            for use in layer.uses()] + [Entry(b.name, b.what, b) for b in BOUNDARIES]


def macs(problem: Problem) -> int:
    """Multiply-adds of a problem: every input element times its output channels' taps."""
    return math.prod(problem.input_shape) * problem.weight_shape[1] * math.prod(problem.weight_shape[2:])


def plain_work(problem: Problem) -> int:
    """Multiply-adds of the plainest algorithm, zero insertion: every tap meets the inserted zeros too, so the
    stride multiplies the work on every axis."""
    return macs(problem) * math.prod(problem.stride)
