"""Model builders, one function per family, in the keras.io manner.

Both take 48x48 grayscale faces scaled to [0, 1] and end in a 7-way softmax in
`moodring.EMOTIONS` order, so the selfie pipeline can load either without knowing which it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import keras
import numpy as np
from keras import layers
from moodring.training import CNN_WIDTHS

from moodring import EMOTIONS
from moodring.errors import ModelError

NUM_CLASSES = len(EMOTIONS)
MAX_CROP = 8  # a test-time view cuts at most this many pixels from each side of a 48x48 face


@dataclass(frozen=True)
class View:
    """A test-time view of a face: `crop` pixels cut from every side and resized back, maybe mirrored.

    Written as "2" or "2m" (mirrored) on the command line; "0" is the face as it is.
    """

    crop: int = 0
    mirrored: bool = False

    @classmethod
    def parse(cls, token: str) -> View:
        """ "1" -> View(1), "1m" -> View(1, mirrored=True); ValueError if it is neither form."""
        mirrored = token.endswith("m")
        return cls(int(token[:-1] if mirrored else token), mirrored)

    def __str__(self) -> str:
        return f"{self.crop}{'m' if self.mirrored else ''}"


@keras.saving.register_keras_serializable(package="moodring")
class Mirror(layers.Layer):
    """Flips faces left to right: the members were trained with random flips, so a mirror image is a fair view."""

    def call(self, faces):
        return keras.ops.flip(faces, axis=2)


@keras.saving.register_keras_serializable(package="moodring")
class Mean(layers.Layer):
    """The mean of its inputs as one reduction.

    Keras' `Average` multiplies the sum by 1/n, a constant that LiteRT's float16 export would
    round (1/3 by 2.4e-4), so probabilities would no longer sum to one.
    """

    def call(self, inputs):
        return keras.ops.mean(keras.ops.stack(inputs), axis=0)


@keras.saving.register_keras_serializable(package="moodring")
class HalfStorage(keras.DTypePolicy):
    """Weights stored in float16, arithmetic in float32: halves a model file and changes little else.

    Keras casts a layer's float16 weights to float32 when it runs, so the model computes as its
    float32 original up to the rounding of its weights, and LiteRT's float16 export keeps exactly
    those weights. Keras saves a layer's policy by name only, so the layers below re-apply it.
    """

    def __init__(self, name: str = "half_storage") -> None:
        super().__init__("float32")
        self._name = name
        self._variable_dtype = "float16"


class _HalfStorageLayer:
    """Mixin: the layer always uses `HalfStorage`, also when Keras loads it from a saved config."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **{**kwargs, "dtype": HalfStorage()})


@keras.saving.register_keras_serializable(package="moodring")
class HalfConv2D(_HalfStorageLayer, layers.Conv2D):
    """A `Conv2D` with float16 weights (`HalfStorage`)."""


@keras.saving.register_keras_serializable(package="moodring")
class HalfDense(_HalfStorageLayer, layers.Dense):
    """A `Dense` layer with float16 weights (`HalfStorage`)."""


def with_half_storage(model: keras.Model) -> keras.Model:
    """A copy of a trained model that computes the same, with its weights stored in float16.

    Each batch norm that follows a convolution is first folded into it (scale into the kernel,
    shift into a bias): LiteRT's converter folds it anyway, and folding after rounding would
    give LiteRT different weights from Keras. Convolution and dense weights, nearly all of the
    model, are then stored in float16; whatever else has weights stays float32.
    """
    folded = _norms_after_convolutions(model)
    folded_norms = {norm.name for norm in folded.values()}

    def clone(layer: layers.Layer) -> layers.Layer:
        config = layer.get_config()
        if isinstance(layer, layers.Conv2D):
            return HalfConv2D.from_config({**config, "use_bias": True} if layer.name in folded else config)
        if isinstance(layer, layers.Dense):
            return HalfDense.from_config(config)
        return type(layer).from_config(config)

    def call(layer: layers.Layer, inputs, *args, **kwargs):
        return inputs if layer.name in folded_norms else layer(inputs, *args, **kwargs)

    copy = keras.models.clone_model(model, clone_function=clone, call_function=call)
    for target in (layer for layer in copy.layers if layer.weights):
        source = model.get_layer(target.name)
        if source.name in folded:
            target.set_weights(_fold(source, folded[source.name]))
        else:
            target.set_weights(source.get_weights())
    return copy


def _norms_after_convolutions(model: keras.Model) -> dict[str, layers.BatchNormalization]:
    """Each batch norm that directly follows a convolution, by the convolution's name: the pairs that fold into one
    convolution (`with_half_storage`) and unfold back (`unfold_into`)."""
    return {
        layer.name: after
        for layer, after in pairwise(model.layers)
        if isinstance(layer, layers.Conv2D)
        and layer.get_config()["activation"] == "linear"  # a norm after an activation cannot be folded
        and isinstance(after, layers.BatchNormalization)
        and after.input is layer.output
    }


def _fold(conv: layers.Conv2D, norm: layers.BatchNormalization) -> list[np.ndarray]:
    """Kernel and bias of `conv` followed by `norm` (in inference mode) as one convolution."""
    kernel = conv.kernel.numpy().astype(np.float64)
    bias = conv.bias.numpy().astype(np.float64) if conv.use_bias else 0.0
    scale = 1.0 / np.sqrt(norm.moving_variance.numpy().astype(np.float64) + norm.epsilon)
    if norm.scale:
        scale = scale * norm.gamma.numpy()
    shift = norm.beta.numpy() if norm.center else 0.0
    return [(kernel * scale).astype(np.float32), ((bias - norm.moving_mean.numpy()) * scale + shift).astype(np.float32)]


def unfold_into(model: keras.Model, folded: keras.Model, faces: np.ndarray, batch_size: int = 256) -> None:
    """Give `model` the weights of `folded`, the same net with each batch norm folded into its convolution.

    The members of a shipped ensemble are stored folded (`with_half_storage`), and their runs' folders may be lost.
    Each norm is rebuilt to give what the folded convolution gave, in inference and in training alike: its moving
    statistics, and its scale and shift, come from the convolution's output on `faces` (float32 in [0, 1], like a
    training batch), so that training starts where the folded net is rather than from normalised activations.
    """
    targets = [layer for layer in model.layers if isinstance(layer, layers.Conv2D | layers.Dense)]
    sources = [layer for layer in folded.layers if isinstance(layer, layers.Conv2D | layers.Dense)]
    if [tuple(t.weights[0].shape) for t in targets] != [tuple(s.weights[0].shape) for s in sources]:
        raise ModelError(f"{folded.name} does not have the layers of {model.name}")
    norms = _norms_after_convolutions(model)
    probed = [source for target, source in zip(targets, sources, strict=True) if target.name in norms]
    probe = keras.Model(folded.input, [layer.output for layer in probed])
    sums = {layer.name: np.zeros(layer.weights[0].shape[-1]) for layer in probed}
    squares = {name: np.zeros_like(total) for name, total in sums.items()}
    rows = dict.fromkeys(sums, 0)
    for start in range(0, len(faces), batch_size):
        outputs = probe(faces[start : start + batch_size], training=False)
        for layer, output in zip(probed, outputs, strict=True):
            values = np.asarray(output, np.float64).reshape(-1, sums[layer.name].size)
            sums[layer.name] += values.sum(axis=0)
            squares[layer.name] += (values**2).sum(axis=0)
            rows[layer.name] += len(values)
    for target, source in zip(targets, sources, strict=True):
        weights = [np.asarray(weight, np.float32) for weight in source.get_weights()]
        if target.name not in norms:
            target.set_weights(weights)
            continue
        kernel, bias = weights
        mean = sums[source.name] / rows[source.name]  # of the folded output, bias included
        variance = np.maximum(squares[source.name] / rows[source.name] - mean**2, 0.0)
        target.set_weights([kernel])
        # norm(x) = scale * (x - moving_mean) / sqrt(moving_variance + eps) + shift = x + bias for the kernel's x.
        # In training the batch's own statistics stand in for the moving ones: the same for batches like `faces`.
        scale = np.sqrt(variance + norms[target.name].epsilon)
        norms[target.name].set_weights([w.astype(np.float32) for w in (scale, mean, mean - bias, variance)])


def build_cnn(
    input_size: int = 48,
    widths: tuple[int, ...] = CNN_WIDTHS["cnn"],
    convs_per_block: int = 2,
    dropout: float = 0.4,
) -> keras.Model:
    """VGG-style CNN: conv-BN-ReLU blocks, max-pooling, global average pooling, softmax.

    Plain 3x3 convolutions are what oneDNN runs fastest on a CPU; global pooling keeps the head
    small, so most of the budget goes to features. Widths were chosen by accuracy per
    CPU-minute (see training/EXPERIMENTS.md).
    """
    inputs = keras.Input((input_size, input_size, 1), name="face")
    x = inputs
    for width in widths:
        for _ in range(convs_per_block):
            x = _conv_norm(x, width)
        x = layers.MaxPooling2D()(x)
    return keras.Model(inputs, _classifier_head(x, dropout), name="moodring_cnn")


def build_residual_cnn(
    input_size: int = 48, widths: tuple[int, ...] = CNN_WIDTHS["rescnn"], dropout: float = 0.4
) -> keras.Model:
    """A deeper, narrower CNN with residual blocks, at the cost of one `build_cnn` 32-wide pass.

    Each stage is a conv-BN-ReLU that sets its width, then a two-conv residual block: 12 convolutions
    where the VGG-style member has 8. At three-quarters of the width it runs about as fast
    (run res-61, training/EXPERIMENTS.md), so it can stand in for a member of the shipped ensemble
    and, built differently, may err differently from the VGG-style members.
    """
    inputs = keras.Input((input_size, input_size, 1), name="face")
    x = inputs
    for width in widths:
        x = _conv_norm(x, width)
        shortcut = x
        x = _conv_norm(x, width)
        x = _conv_norm(x, width, activation=False)
        x = layers.ReLU()(layers.Add()([shortcut, x]))
        x = layers.MaxPooling2D()(x)
    return keras.Model(inputs, _classifier_head(x, dropout), name="moodring_residual_cnn")


def _conv_norm(x, width: int, activation: bool = True):
    x = layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x) if activation else x


def _classifier_head(features, dropout: float):
    """Global pooling, one hidden dense layer, softmax: shared by both compact CNNs."""
    x = layers.GlobalAveragePooling2D()(features)
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(256, activation="relu")(x)
    x = layers.Dropout(dropout)(x)
    return layers.Dense(NUM_CLASSES, activation="softmax", name="emotion", dtype="float32")(x)


def build_resnet50v2(
    input_size: int = 224,
    weights: str | Path | None = "imagenet",
    dropout: float = 0.3,
) -> tuple[keras.Model, keras.Model]:
    """ResNet50V2 transfer learning: 48x48 faces are resized, replicated to RGB, then the base.

    Returns (model, base) so training can freeze the base for warm-up and unfreeze it to
    fine-tune. `weights` is "imagenet" (downloaded by Keras on first use), None (from scratch)
    or a path to a weights file for the base.
    """
    if isinstance(weights, (str, Path)) and str(weights) != "imagenet":
        weights_path = Path(weights)
        if not weights_path.is_file():
            raise ModelError(f"ResNet50V2 weights file not found: {weights_path}")
    try:
        base = keras.applications.ResNet50V2(
            include_top=False,
            weights=None if weights is None else str(weights),
            input_shape=(input_size, input_size, 3),
            pooling="avg",
        )
    except Exception as exc:  # Keras raises URL/OS/Value errors here: all mean "no weights"
        raise ModelError(
            f"cannot load ResNet50V2 weights {weights!r} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); pass --weights none or a local file"
        ) from None
    inputs = keras.Input((48, 48, 1), name="face")
    x = layers.Resizing(input_size, input_size)(inputs)
    x = layers.Concatenate()([x, x, x])
    # ResNet50V2 expects inputs in [-1, 1]; faces arrive in [0, 1].
    x = layers.Rescaling(2.0, offset=-1.0)(x)
    x = base(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="emotion", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="moodring_resnet50v2"), base


def build_ensemble(
    members: list[keras.Model], views: Sequence[View] = (View(),), half_storage: bool = False
) -> keras.Model:
    """One model whose output is the mean of its members' probabilities over a few test-time views.

    Independently trained nets make different mistakes, so their average is more accurate than
    any of them; as one model it loads, evaluates and exports to LiteRT like a single net.
    Each view is the face zoomed (`View.crop` pixels cut from every side, resized back to
    48x48) and maybe mirrored. Views live inside the model so that `moodring evaluate`, the
    LiteRT export and the selfie pipeline all measure the same thing, and so that the model,
    not the pipeline, decides how many passes a face costs. `half_storage` stores the members'
    weights in float16 (`with_half_storage`), for ensembles that would not fit the model size limit.
    """
    if not members:
        raise ModelError("an ensemble needs at least one member model")
    views = tuple(views)
    if not views or len(set(views)) != len(views) or not all(0 <= view.crop <= MAX_CROP for view in views):
        raise ModelError(
            f"views must be distinct, each cutting 0 to {MAX_CROP} pixels, not {[str(view) for view in views]}"
        )
    for number, member in enumerate(members, start=1):
        # LiteRT's built-in ops are float32: a bf16 layer would need TensorFlow's Flex delegate. Float16
        # storage computes in float32, so members taken back out of a half-storage ensemble are welcome.
        policies = {layer.dtype_policy.name for layer in member.layers if layer.dtype_policy.compute_dtype != "float32"}
        if policies:
            raise ModelError(  # by position, as the CLI's member paths are given: every run's model has one name
                f"member {number} of {len(members)} ({member.name}) has {', '.join(sorted(policies))} layers: "
                "use a run's float32 model.keras, not best.keras"
            )
    if half_storage:
        members = [with_half_storage(member) for member in members]
    inputs = keras.Input((48, 48, 1), name="face")
    mirrored = Mirror(name="mirror")(inputs) if any(view.mirrored for view in views) else None
    view_inputs = []
    for view in views:
        face = mirrored if view.mirrored else inputs
        if view.crop:
            face = layers.Cropping2D(view.crop, name=f"crop_{view}")(face)
            face = layers.Resizing(48, 48, name=f"zoom_{view}")(face)
        view_inputs.append(face)
    # Members keep their own layers; each gets a distinct name so the ensemble can be saved.
    renamed = [keras.Model(m.input, m.output, name=f"member_{i}") for i, m in enumerate(members)]
    outputs = [member(face) for member in renamed for face in view_inputs]
    averaged = outputs[0] if len(outputs) == 1 else Mean(name="emotion")(outputs)
    return keras.Model(inputs, averaged, name="moodring_ensemble")


def ensemble_members(ensemble: keras.Model) -> list[keras.Model]:
    """The member nets of a `build_ensemble` model, each a standalone model again.

    Runs' folders live outside git and may be lost; the shipped ensemble still holds its members,
    so they can be re-combined, scored alone or trained on (`moodring train --init-from`).
    """
    members = [
        layer for layer in ensemble.layers if isinstance(layer, keras.Model) and layer.name.startswith("member_")
    ]
    if not members:
        raise ModelError(f"{ensemble.name} is not an ensemble: it has no member_N sub-models")
    return [keras.Model(member.input, member.output, name=member.name) for member in members]


def load_model(path: str | Path) -> keras.Model:
    """Load a trained `.keras` model, checking it is a 48x48 7-way emotion classifier."""
    path = Path(path)
    if not path.is_file():
        raise ModelError.not_found(path)
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras wraps zip, h5 and deserialisation errors differently
        raise ModelError(
            f"cannot load model {path}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from None
    if tuple(model.input_shape[1:]) != (48, 48, 1) or model.output_shape[-1] != NUM_CLASSES:
        raise ModelError(
            f"{path} is not a Moodring emotion model: input {model.input_shape}, output {model.output_shape}; "
            f"expected (None, 48, 48, 1) -> (None, {NUM_CLASSES})"
        )
    return model
