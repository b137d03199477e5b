"""Model builders, ensembles with test-time views, float16 storage, members taken back out, and loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from moodring import EMOTIONS
from moodring.errors import ModelError


def give_norms_trained_statistics(model, rng: np.random.Generator) -> None:
    """Batch norms far from their initial identity, as after training, so that folding them matters."""
    import keras

    for norm in (layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)):
        gamma, beta, mean, variance = (w.shape for w in norm.get_weights())
        scale, shift = rng.uniform(0.5, 2, gamma), rng.normal(0, 0.5, beta)
        norm.set_weights([scale, shift, rng.normal(0, 1, mean), rng.uniform(0.2, 3, variance)])


def test_builders_give_seven_way_softmax() -> None:
    from moodring.training.models import build_cnn, build_residual_cnn, build_resnet50v2

    faces = np.random.default_rng(0).random((2, 48, 48, 1), dtype=np.float32)
    cnn = build_cnn(widths=(8, 16), convs_per_block=1)
    residual = build_residual_cnn(widths=(8, 16))
    resnet, base = build_resnet50v2(input_size=32, weights=None)
    for model in (cnn, residual, resnet):
        probabilities = np.asarray(model(faces, training=False))
        assert probabilities.shape == (2, len(EMOTIONS))
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert base.name == "resnet50v2"


def test_resnet50v2_without_reachable_weights_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from moodring.training.models import build_resnet50v2

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # no cached download: the real fetch path runs
    with pytest.raises(ModelError, match="cannot load ResNet50V2 weights 'imagenet'.*--weights none"):
        build_resnet50v2(input_size=32, weights="imagenet")
    with pytest.raises(ModelError, match="weights file not found"):
        build_resnet50v2(input_size=32, weights=tmp_path / "missing.h5")


def test_load_model_rejects_missing_and_foreign_files(tmp_path: Path) -> None:
    import keras
    from moodring.training.models import load_model

    with pytest.raises(ModelError, match="model file not found"):
        load_model(tmp_path / "none.keras")
    junk = tmp_path / "junk.keras"
    junk.write_text("not a model")
    with pytest.raises(ModelError, match="cannot load model"):
        load_model(junk)
    other = tmp_path / "other.keras"
    keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(), keras.layers.Dense(3)]).save(other)
    with pytest.raises(ModelError, match="is not a Moodring emotion model"):
        load_model(other)


def test_view_parsing() -> None:
    from moodring.training.models import View

    assert [View.parse(token) for token in ("0", "1", "2m")] == [View(0), View(1), View(2, mirrored=True)]
    assert [str(view) for view in (View(0), View(2, mirrored=True))] == ["0", "2m"]
    for bad in ("", "m", "two", "1mm"):
        with pytest.raises(ValueError):
            View.parse(bad)


def test_ensemble_refuses_a_bfloat16_checkpoint() -> None:
    import keras
    from moodring.training.models import build_cnn, build_ensemble

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        checkpoint = build_cnn(widths=(8, 16), convs_per_block=1)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    with pytest.raises(ModelError, match="member 2 of 2 .* use a run's float32 model.keras"):
        build_ensemble([build_cnn(widths=(8, 16), convs_per_block=1), checkpoint])


def test_ensemble_views_average_the_member_over_zoomed_and_mirrored_faces(tmp_path: Path) -> None:
    import keras
    import tensorflow as tf
    from moodring.emotion.classify import EmotionClassifier
    from moodring.training.export import litert_bytes
    from moodring.training.models import View, build_cnn, build_ensemble, load_model

    member = build_cnn(widths=(8, 16), convs_per_block=1)
    faces = np.random.default_rng(0).random((4, 48, 48, 1), dtype=np.float32)
    zoomed = tf.image.resize(faces[:, 2:-2, 2:-2], (48, 48)).numpy()
    mirrored_zoom = tf.image.resize(faces[:, :, ::-1][:, 1:-1, 1:-1], (48, 48)).numpy()
    expected = np.mean([member.predict(x, verbose=0) for x in (faces, zoomed, mirrored_zoom)], axis=0)
    ensemble = build_ensemble([member], views=(View(0), View(2), View(1, mirrored=True)))
    np.testing.assert_allclose(ensemble.predict(faces, verbose=0), expected, atol=1e-5)
    assert isinstance(ensemble.get_layer("zoom_2"), keras.layers.Resizing)
    # The mirror is a layer of our own: it must survive saving, loading and the LiteRT export.
    ensemble.save(tmp_path / "e.keras")
    np.testing.assert_allclose(load_model(tmp_path / "e.keras").predict(faces, verbose=0), expected, atol=1e-5)
    litert = EmotionClassifier(litert_bytes(ensemble, weights="float"), "test ensemble")
    uint8_faces = np.round(faces[..., 0] * 255).astype(np.uint8)
    np.testing.assert_allclose(
        litert.predict(uint8_faces), ensemble.predict(uint8_faces[..., None] / np.float32(255), verbose=0), atol=1e-5
    )
    for bad in ((), (View(0), View(0)), (View(9),), (View(-1),)):
        with pytest.raises(ModelError, match="views must be distinct"):
            build_ensemble([member], views=bad)


@pytest.mark.slow
def test_half_storage_halves_the_files_and_keeps_the_predictions(tmp_path: Path) -> None:
    import keras
    from moodring.training.export import export, litert_bytes, litert_predict
    from moodring.training.models import (
        View,
        build_cnn,
        build_ensemble,
        build_residual_cnn,
        load_model,
        with_half_storage,
    )

    rng = np.random.default_rng(0)
    # Three members, as 1/3 is not a float16 number; one residual, whose skip connections the folding must respect.
    # Wide enough that the float32 weights, not the file's fixed parts, make up the size that halves.
    members = [build_cnn(widths=(16, 32, 64, 128)) for _ in range(2)] + [build_residual_cnn(widths=(8, 16, 32, 64))]
    for member in members:
        give_norms_trained_statistics(member, rng)
    faces = rng.random((64, 48, 48, 1), dtype=np.float32)
    full = build_ensemble(members, views=(View(1),))
    half = build_ensemble(members, views=(View(1),), half_storage=True)
    assert {weight.dtype for weight in half.weights} == {"float16"}  # every batch norm was folded away
    np.testing.assert_allclose(half.predict(faces, verbose=0), full.predict(faces, verbose=0), atol=2e-3)

    full.save(tmp_path / "full.keras")
    half.save(tmp_path / "half.keras")
    assert (tmp_path / "half.keras").stat().st_size < 0.55 * (tmp_path / "full.keras").stat().st_size
    reloaded = load_model(tmp_path / "half.keras")
    np.testing.assert_array_equal(reloaded.predict(faces, verbose=0), half.predict(faces, verbose=0))
    # LiteRT keeps the very same float16 weights, so the export passes the usual equality check.
    out, record = export(tmp_path / "half.keras", faces=(faces, "random faces"), weights="float")
    assert record["passed"] and record["max_abs_diff"] < 1e-4
    np.testing.assert_allclose(litert_predict(out.read_bytes(), faces).sum(axis=1), 1.0, atol=1e-5)
    assert out.stat().st_size < 0.55 * len(litert_bytes(full, weights="float"))

    # A batch norm after an activation stays as it is: folding it into the convolution would be wrong.
    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.BatchNormalization(moving_mean_initializer="ones")(x)
    activated = keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(keras.layers.Flatten()(x)))
    kept = with_half_storage(activated)
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in kept.layers)
    np.testing.assert_allclose(kept.predict(faces, verbose=0), activated.predict(faces, verbose=0), atol=2e-3)


def test_members_come_back_out_of_an_ensemble_unchanged() -> None:
    from moodring.training.evaluate import predict_probabilities
    from moodring.training.models import View, build_cnn, build_ensemble, ensemble_members

    first, second = build_cnn(widths=(8, 16), convs_per_block=1), build_cnn(widths=(8, 8, 8), convs_per_block=1)
    faces = np.random.default_rng(0).integers(0, 256, (16, 48, 48), dtype=np.uint8)
    members = ensemble_members(build_ensemble([first, second], (View(1),)))
    for member, original in zip(members, (first, second), strict=True):
        assert member.count_params() == original.count_params()
        np.testing.assert_allclose(predict_probabilities(member, faces), predict_probabilities(original, faces))
    # The shipped ensemble stores its weights in float16: its members must combine again, unchanged.
    half = build_ensemble([first, second], (View(1),), half_storage=True)
    rebuilt = build_ensemble(ensemble_members(half), (View(1),), half_storage=True)
    np.testing.assert_array_equal(predict_probabilities(rebuilt, faces), predict_probabilities(half, faces))
    with pytest.raises(ModelError, match="is not an ensemble"):
        ensemble_members(first)


def test_a_folded_member_unfolds_into_a_net_that_trains_from_where_it_is() -> None:
    """`moodring train --init-from` a shipped member: its norms rebuilt so both inference and training start there."""
    import keras
    from moodring.training.models import build_cnn, unfold_into, with_half_storage

    rng = np.random.default_rng(0)
    trained = build_cnn(widths=(8, 16), dropout=0.0)
    give_norms_trained_statistics(trained, rng)
    folded = with_half_storage(trained)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in folded.layers)
    faces = rng.uniform(0, 1, (512, 48, 48, 1)).astype("float32")
    unfolded = build_cnn(widths=(8, 16), dropout=0.0)
    unfold_into(unfolded, folded, faces)

    expected = np.asarray(folded(faces[:64]))
    np.testing.assert_allclose(np.asarray(unfolded(faces[:64], training=False)), expected, atol=1e-4)
    # In training, a batch's own statistics replace the moving ones: a batch like `faces` gives nearly the same.
    in_training = np.asarray(unfolded(faces[:64], training=True))
    assert np.abs(in_training - expected).max() < 0.05
    # A net that is not this one's folded copy is refused.
    with pytest.raises(ModelError, match="does not have the layers"):
        unfold_into(build_cnn(widths=(8, 8), dropout=0.0), folded, faces)
