"""Training throughput of candidate CNN widths and ResNet50V2 input sizes, to choose by CPU cost.

Run it twice to compare oneDNN and precision settings side by side (TensorFlow reads the
oneDNN switch once, at import):

    TF_ENABLE_ONEDNN_OPTS=0 python benchmarks/train_throughput.py --precision fp32
    TF_ENABLE_ONEDNN_OPTS=1 python benchmarks/train_throughput.py --precision fp32
    TF_ENABLE_ONEDNN_OPTS=1 python benchmarks/train_throughput.py --precision bf16

Prints images per second and the minutes one FER2013 epoch (28,709 faces) would take.
`--resnet-sizes 48 64 96` adds ResNet50V2 (from scratch, whole net trained) at those input sides;
`--widths` chooses the VGG-style CNNs (e.g. `--widths` alone measures none), `--residual-widths` adds
residual ones (`moodring train --model rescnn`), e.g. `--residual-widths 24,48,96,192`.
"""

from __future__ import annotations

import argparse
import os
import time

from moodring.settings import parse_int_list  # importing moodring sets TensorFlow's environment defaults first

CANDIDATES = ((32, 64, 128, 256), (48, 96, 192, 384), (64, 128, 256, 512))
TRAIN_FACES = 28_709


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="bf16")
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument(
        "--widths",
        nargs="*",
        type=parse_int_list,
        default=list(CANDIDATES),
        help="CNN widths to measure, e.g. 32,64,128,256 (default: all three candidates)",
    )
    parser.add_argument(
        "--residual-widths", nargs="*", type=parse_int_list, default=[], help="residual CNN widths to measure"
    )
    parser.add_argument("--resnet-sizes", nargs="*", type=int, default=[], help="ResNet50V2 input sides")
    args = parser.parse_args()

    import keras
    import numpy as np
    from moodring.training.models import build_cnn, build_residual_cnn, build_resnet50v2

    if args.precision == "bf16":
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    rng = np.random.default_rng(0)
    faces = rng.random((64 * args.batches, 48, 48, 1), dtype=np.float32)
    labels = keras.utils.to_categorical(rng.integers(0, 7, len(faces)), 7)
    print(f"oneDNN={os.environ.get('TF_ENABLE_ONEDNN_OPTS')} precision={args.precision}")
    candidates = [(f"cnn widths={widths}", lambda w=widths: build_cnn(widths=w)) for widths in args.widths]
    candidates += [
        (f"residual cnn widths={widths}", lambda w=widths: build_residual_cnn(widths=w))
        for widths in args.residual_widths
    ]
    candidates += [
        (f"resnet50v2 {size}x{size}", lambda s=size: build_resnet50v2(input_size=s, weights=None)[0])
        for size in args.resnet_sizes
    ]
    for name, build in candidates:
        model = build()
        model.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy")
        model.fit(faces[:640], labels[:640], batch_size=64, epochs=1, verbose=0)  # warm-up, tracing
        started = time.perf_counter()
        model.fit(faces, labels, batch_size=64, epochs=1, verbose=0)
        rate = len(faces) / (time.perf_counter() - started)
        print(
            f"{name} params={model.count_params() / 1e6:.2f}M "
            f"{rate:.0f} img/s, {TRAIN_FACES / rate / 60:.1f} min per epoch"
        )


if __name__ == "__main__":
    main()
