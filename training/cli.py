"""`moodring train` and `moodring evaluate`."""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from moodring.models import SHIPPED_KERAS
from moodring.training import CNN_WIDTHS, DEFAULT_EPOCHS, MODELS
from moodring.training.data import SPLITS

from moodring import tensorflow_logs
from moodring.errors import ConfigError
from moodring.settings import Settings, parse_int_list

if TYPE_CHECKING:
    from moodring.training.models import View


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the training commands to the `moodring` command; each says how to get TensorFlow when it is missing."""
    commands = (
        ("train", "train an emotion model on FER2013", _train_arguments, run_train),
        (
            "ensemble",
            "average trained models into one model file, and compare them on PublicTest",
            _ensemble_arguments,
            run_ensemble,
        ),
        ("members", "save each member of an ensemble as a model file of its own", _members_arguments, run_members),
        ("evaluate", "measure a model on a FER2013 split", _evaluate_arguments, run_evaluate),
        (
            "export",
            "write a .keras model's LiteRT copy (.tflite), checked against Keras on PrivateTest",
            _export_arguments,
            run_export,
        ),
    )
    for name, summary, add_arguments, handler in commands:
        command = subparsers.add_parser(name, help=summary)
        add_arguments(command)
        command.set_defaults(handler=_needs_training_extra(handler))


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    """`moodring train`: the recipe's every knob, with the shipped members' values as defaults."""
    parser.add_argument(
        "--model",
        choices=MODELS,
        default="cnn",
        help="cnn: VGG-style, the shipped members; rescnn: residual, same cost per face; resnet50v2: transfer learning",
    )
    parser.add_argument("--data", type=Path, help="FER2013 csv(.gz) or image folder (default: MOODRING_FER2013)")
    parser.add_argument(
        "--epochs",
        type=int,
        help="default: " + "; ".join(f"{epochs} for {model}" for model, epochs in DEFAULT_EPOCHS.items()),
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument(
        "--warmup-epochs",
        type=int,
        default=2,
        help="epochs rising from a tenth of --learning-rate to it, before the cosine decay (default 2)",
    )
    parser.add_argument(
        "--widths",
        type=parse_int_list,
        help="CNN filters per stage, comma-separated (default: "
        + "; ".join(f"{','.join(map(str, widths))} for {model}" for model, widths in CNN_WIDTHS.items())
        + ")",
    )
    parser.add_argument("--input-size", type=int, default=224, help="ResNet50V2 input side (default 224)")
    parser.add_argument("--weights", default="imagenet", help="ResNet50V2 base weights: imagenet, none, or a file")
    parser.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto")
    parser.add_argument(
        "--seed", type=int, default=1337, help="weights, shuffling and augmentation; vary it for ensemble members"
    )
    parser.add_argument("--teacher", type=Path, help="distil from this trained .keras model or ensemble")
    parser.add_argument(
        "--distill-weight",
        type=float,
        default=0.3,
        help="share of the teacher's probabilities in the targets (default 0.3; 0.7 made worse members)",
    )
    parser.add_argument(
        "--mix",
        choices=("none", "mixup", "cutmix"),
        default="none",
        help="blend pairs of training faces and their labels, a regulariser (default: none, the shipped recipe)",
    )
    parser.add_argument(
        "--init-from",
        type=Path,
        metavar="MODEL",
        help="start from this trained float32 model's weights (same architecture) for one more cosine cycle",
    )
    parser.add_argument(
        "--final",
        action="store_true",
        help="train on Training + PublicTest for exactly --epochs, keep the last epoch (a recipe fixed beforehand)",
    )
    parser.add_argument(
        "--photo-framed",
        action="store_true",
        help="also learn each face as the selfie pipeline cuts it from a photo with a random background and tilt "
        "(about 60 ms of CPU per face, once: cached in MOODRING_CACHE_DIR)",
    )
    parser.add_argument("--limit", type=int, help="train on the first N faces only (smoke tests)")
    parser.add_argument("--run-dir", type=Path, help="run folder (default: runs/<model>-<time>)")
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --run-dir (default: the newest run of --model)"
    )


def _ensemble_arguments(parser: argparse.ArgumentParser) -> None:
    """`moodring ensemble`: members averaged into one model file."""
    parser.add_argument("members", nargs="+", type=Path, metavar="MODEL", help="trained .keras models")
    parser.add_argument("--out", type=Path, required=True, help="where to save the ensemble (.keras)")
    parser.add_argument(
        "--curves", type=Path, metavar="PNG", help="also draw the members' training curves (their runs' history.csv)"
    )
    parser.add_argument(
        "--views",
        type=_view_list,
        default="0",
        metavar="VIEWS",
        help="test-time views averaged inside the model, e.g. 1,1m,2: pixels cut from each side and resized "
        "back, m for the mirror image (default: 0, the face as it is)",
    )
    parser.add_argument(
        "--half-storage",
        action="store_true",
        help="store the weights in float16 (half the file; predictions differ by float16 rounding only), "
        "for ensembles over the 20 MB model limit",
    )
    parser.add_argument("--data", type=Path, help="FER2013 csv(.gz) or image folder (default: MOODRING_FER2013)")


def _members_arguments(parser: argparse.ArgumentParser) -> None:
    """`moodring members`: an ensemble's members back as model files."""
    parser.add_argument("ensemble", type=Path, metavar="ENSEMBLE", help="a .keras model built by `moodring ensemble`")
    parser.add_argument("--out-dir", type=Path, required=True, help="writes member-1.keras, member-2.keras, ... here")


def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    """`moodring evaluate`: metrics and a confusion matrix on a FER2013 split."""
    parser.add_argument("model_path", nargs="?", type=Path, metavar="MODEL", help="default: the shipped model")
    parser.add_argument("--split", choices=SPLITS, default="PrivateTest")
    parser.add_argument("--data", type=Path, help="FER2013 csv(.gz) or image folder (default: MOODRING_FER2013)")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object")
    parser.add_argument(
        "--flip-average",
        action=argparse.BooleanOptionalAction,
        help="average each face with its mirror image, as the selfie pipeline does when MOODRING_FLIP_AVERAGE is on "
        "(default: MOODRING_FLIP_AVERAGE, off)",
    )
    parser.add_argument("--out", type=Path, help="also write metrics.json and confusion.png here")


def _export_arguments(parser: argparse.ArgumentParser) -> None:
    """`moodring export`: the LiteRT copy the selfie pipeline runs."""
    parser.add_argument("model_path", nargs="?", type=Path, metavar="MODEL", help="default: the shipped model")
    parser.add_argument("--out", type=Path, help="the .tflite to write (default: beside the model)")
    parser.add_argument(
        "--weights",
        choices=("int8", "float"),
        default="int8",
        help="int8: weights stored as int8, ~3x faster on a CPU, answers within 0.05 of Keras (default); "
        "float: weights as the model stores them, answers equal to Keras",
    )


def _needs_training_extra(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Training commands need TensorFlow and matplotlib, which the lean install leaves out: say how to get them.

    They also start TensorFlow, whose C++ start-up lines are dropped from stderr unless `-v` asks for them.
    """

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        missing = [name for name in ("tensorflow", "matplotlib") if importlib.util.find_spec(name) is None]
        if missing:
            raise ConfigError(
                f"`moodring {args.command}` needs {' and '.join(missing)}: "
                'install the training extra with `pip install "moodring[train]"`'
            )
        if args.verbose:
            return handler(args)
        with tensorflow_logs.dropped():
            return handler(args)

    return run


def _view_list(value: str) -> tuple[View, ...]:
    """Parse "1,1m,2" into test-time views; argparse turns the ValueError into a one-line usage error."""
    from moodring.training.models import View

    return tuple(View.parse(part) for part in value.split(","))


def _newest_run(runs_dir: Path, model: str) -> Path:
    runs = sorted(runs_dir.glob(f"{model}-*"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise ConfigError(f"--resume: no earlier {model} run in {runs_dir}; pass --run-dir")
    return runs[-1]


def run_train(args: argparse.Namespace) -> int:
    """Handler of `moodring train`."""
    settings = Settings.load()
    for flag, path in (("--teacher", args.teacher), ("--init-from", args.init_from)):
        if path and not path.is_file():  # before TensorFlow starts and logs
            raise ConfigError(f"{flag} {path}: no such model file")
    if args.run_dir:
        run_dir = args.run_dir
    elif args.resume:
        run_dir = _newest_run(settings.runs_dir, args.model)
    else:
        run_dir = settings.runs_dir / f"{args.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    from moodring.training.data import load_fer2013
    from moodring.training.train import TrainConfig, train

    weights = None if args.weights.lower() == "none" else args.weights
    config = TrainConfig(
        model=args.model,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        warmup_epochs=args.warmup_epochs,
        input_size=args.input_size,
        weights=weights,
        precision=args.precision,
        train_limit=args.limit,
        cnn_widths=args.widths,
        seed=args.seed,
        teacher=str(args.teacher) if args.teacher else None,
        distill_weight=args.distill_weight,
        mix=args.mix,
        init_from=str(args.init_from) if args.init_from else None,
        final=args.final,
        photo_framed=args.photo_framed,
    )
    data = load_fer2013(args.data or settings.fer2013_path, cache_dir=settings.cache_dir)
    train(config, data, run_dir, resume=args.resume, cache_dir=settings.cache_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    print(f"{run_dir}: PrivateTest accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}")
    return 0


def run_ensemble(args: argparse.Namespace) -> int:
    """Handler of `moodring ensemble`."""
    settings = Settings.load()
    from moodring.training.data import load_fer2013
    from moodring.training.ensemble import make_ensemble, member_histories

    if args.out.suffix != ".keras":  # these two before the dataset loads and TensorFlow starts
        raise ConfigError(f"--out must end in .keras, not {args.out.name!r}")
    if args.curves:
        member_histories(args.members)
    data = load_fer2013(args.data or settings.fer2013_path, cache_dir=settings.cache_dir)
    for line in make_ensemble(
        args.members, args.out, data, args.views, args.half_storage, settings.flip_average, args.curves
    ):
        print(line)
    return 0


def run_members(args: argparse.Namespace) -> int:
    """Handler of `moodring members`: the shipped ensemble's nets back as files, when their runs are gone."""
    from moodring.training.models import ensemble_members, load_model

    members = ensemble_members(load_model(args.ensemble))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for number, member in enumerate(members, start=1):
        path = args.out_dir / f"member-{number}.keras"
        member.save(path)
        print(f"{path}: {member.count_params():,} parameters")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    """Handler of `moodring evaluate`."""
    settings = Settings.load()
    from moodring.training.data import load_fer2013

    data = load_fer2013(args.data or settings.fer2013_path, cache_dir=settings.cache_dir)  # before TensorFlow starts
    from moodring.training.evaluate import evaluate, plot_confusion
    from moodring.training.models import load_model

    model_path = args.model_path or SHIPPED_KERAS
    model = load_model(model_path)
    flip_average = settings.flip_average if args.flip_average is None else args.flip_average
    metrics = evaluate(model, data.split(args.split), args.split, flip_average)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        plot_confusion(metrics, args.out / "confusion.png", Path(model_path).name)
    if args.json:
        print(json.dumps(metrics))
    else:
        print(
            f"{model_path} on {args.split} (n={metrics['n']}): accuracy {metrics['accuracy']:.4f}, "
            f"loss {metrics['loss']:.4f}, macro-F1 {metrics['macro_f1']:.4f}"
        )
        for name, row in metrics["per_class"].items():
            print(
                f"  {name:<9} precision {row['precision']:.3f}  recall {row['recall']:.3f}  "
                f"f1 {row['f1']:.3f}  support {row['support']}"
            )
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Handler of `moodring export`."""
    from moodring.training.export import export

    out, record = export(args.model_path or SHIPPED_KERAS, args.out, weights=args.weights)
    print(
        f"wrote {out} ({out.stat().st_size:,} bytes, {args.weights} weights): checked against {record['source']} "
        f"on {record['checked_on']} (max probability difference {record['max_abs_diff']:.1e}, "
        f"top-emotion agreement {record['top_emotion_agreement']:.4f})"
    )
    return 0
