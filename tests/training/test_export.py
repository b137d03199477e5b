"""The LiteRT export the selfie pipeline runs: checked against Keras, and used only while it matches its source."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from moodring.emotion.classify import EmotionClassifier, sha256_of, sidecar_path
from moodring.models import SHIPPED_KERAS, SHIPPED_TFLITE
from moodring.training.data import Split
from moodring.training.export import CHECKS, compare, export, litert_bytes, litert_predict
from moodring.training.models import build_cnn

from moodring.errors import ModelError


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(64, 48, 48), dtype=np.uint8)


def small_model(seed: int):
    import keras

    keras.utils.set_random_seed(seed)
    return build_cnn(widths=(8, 16), convs_per_block=1)


def keras_probabilities(model, faces: np.ndarray) -> np.ndarray:
    return model.predict(faces[..., None].astype(np.float32) / 255.0, verbose=0)


def test_export_is_checked_used_while_current_and_replaced_when_stale(tmp_path: Path, faces: np.ndarray) -> None:
    model_path = tmp_path / "model.keras"
    first = small_model(1)
    first.save(model_path)
    out, record = export(model_path, faces=(faces[..., None] / np.float32(255.0), "random faces"))
    assert out == tmp_path / "model.tflite" and out.is_file()
    assert record["passed"] and record["weights"] == "int8" and record["max_abs_diff"] <= CHECKS["int8"].max_abs_diff
    assert json.loads(sidecar_path(out).read_text())["source_sha256"] == record["source_sha256"]

    current = EmotionClassifier.load(model_path)
    assert current.source == str(out)
    np.testing.assert_allclose(current.predict(faces), keras_probabilities(first, faces), atol=0.05)

    second = small_model(2)
    second.save(model_path)  # retrained, not re-exported: the old .tflite must not be used
    with pytest.raises(ModelError, match="moodring export"):
        EmotionClassifier.load(model_path)
    export(model_path, faces=(faces[..., None] / np.float32(255.0), "random faces"), weights="float")
    np.testing.assert_allclose(
        EmotionClassifier.load(model_path).predict(faces), keras_probabilities(second, faces), atol=1e-4
    )


def test_int8_weights_make_a_smaller_file_that_answers_nearly_as_keras(tmp_path: Path, faces: np.ndarray) -> None:
    import keras

    keras.utils.set_random_seed(3)
    model = build_cnn(widths=(32, 64, 128), convs_per_block=2)  # wide enough that the weights dominate the file
    int8, floats = litert_bytes(model, "int8"), litert_bytes(model, "float")
    assert len(int8) < 0.4 * len(floats)
    expected = keras_probabilities(model, faces)
    report = compare(expected, litert_predict(int8, faces[..., None] / np.float32(255.0)), "int8")
    assert report["passed"] and 0 < report["max_abs_diff"] <= CHECKS["int8"].max_abs_diff
    with pytest.raises(ValueError, match="one of float, int8"):
        litert_bytes(model, "int4")


def test_compare_refuses_outputs_that_differ() -> None:
    probabilities = np.random.default_rng(1).dirichlet(np.ones(7), size=32).astype(np.float32)
    assert compare(probabilities, probabilities, "float")["passed"]
    assert not compare(probabilities, probabilities[::-1], "float")["passed"]
    assert not compare(probabilities, probabilities + 1e-3, "float")["passed"]
    assert compare(probabilities, probabilities + 1e-3, "int8")["passed"]  # int8 weights may move answers a little
    assert not compare(probabilities, probabilities[::-1], "int8")["passed"]


def test_the_shipped_litert_copy_answers_as_the_shipped_keras_model(
    shipped_on_private_test: tuple[Split, np.ndarray],
) -> None:
    """The bot runs the .tflite; the model card reports the .keras: they must be the same model on PrivateTest.

    Its sidecar records the export's check on all 3,589 PrivateTest faces, for this very .keras file; the test
    repeats that check on the first LITERT_CHECK_FACES of them.
    """
    record = json.loads(sidecar_path(SHIPPED_TFLITE).read_text())
    assert record["source_sha256"] == sha256_of(SHIPPED_KERAS)
    assert record["passed"] and record["checked_on"] == "FER2013 PrivateTest (3589 faces)" and record["faces"] == 3589
    faces, keras_probabilities = shipped_on_private_test
    floats = faces.images[:LITERT_CHECK_FACES, :, :, None].astype(np.float32) / 255.0
    litert_probabilities = litert_predict(SHIPPED_TFLITE.read_bytes(), floats)
    report = compare(keras_probabilities[:LITERT_CHECK_FACES], litert_probabilities, record["weights"])
    assert report["passed"], report


LITERT_CHECK_FACES = 256
