"""The selfie pipeline on real photos: the astronaut, rotated copies, composites, blanks, crops, threads.

The recognizer loads the shipped model (`models/six-cnn-ensemble.keras`, or MOODRING_MODEL if set)
once for the whole session.
"""

from __future__ import annotations

import gzip
import io
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from moodring.emotion import Analysis, EmotionRecognizer, ImageError, annotate
from moodring.emotion.drawing import COLOURS
from moodring.emotion.recognizer import ROLL_SHARE, _aligned_face
from PIL import Image

from moodring import EMOTIONS
from moodring.settings import Settings
from tests.paths import ROOT

ASTRONAUT = ROOT / "examples" / "astronaut.jpg"
ASTRONAUT_FACE_CENTRE = (226, 122)  # the middle of Eileen Collins' face in the 512x512 photo


def jpeg(image: Image.Image, **options) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=92, **options)
    return out.getvalue()


def model_settings(shared_data: Path, **extra: str) -> Settings:
    environ = {"MOODRING_DATA_DIR": str(shared_data), **extra}
    if os.environ.get("MOODRING_MODEL"):
        environ["MOODRING_MODEL"] = os.environ["MOODRING_MODEL"]
    return Settings.load(environ=environ)


@pytest.fixture(scope="session")
def recognizer(shared_data: Path) -> EmotionRecognizer:
    return EmotionRecognizer.from_settings(model_settings(shared_data))


@pytest.fixture(scope="session")
def astronaut() -> Image.Image:
    return Image.open(ASTRONAUT).convert("RGB")


def test_astronaut_is_one_happy_face(recognizer: EmotionRecognizer) -> None:
    analysis = recognizer.analyze(ASTRONAUT.read_bytes())
    assert (analysis.width, analysis.height) == (512, 512)
    assert len(analysis.faces) == 1
    face = analysis.faces[0]
    x, y, w, h = face.box
    assert x < ASTRONAUT_FACE_CENTRE[0] < x + w and y < ASTRONAUT_FACE_CENTRE[1] < y + h
    assert 60 < w < 200 and 60 < h < 200
    assert face.emotion == analysis.emotion == "happy"
    assert set(face.scores) == set(EMOTIONS)
    assert sum(face.scores.values()) == pytest.approx(1.0, abs=1e-3)
    assert face.scores["happy"] == max(face.scores.values())


def test_to_dict_is_the_json_shape(recognizer: EmotionRecognizer) -> None:
    shape = recognizer.analyze(ASTRONAUT.read_bytes()).to_dict()
    assert set(shape) == {"emotion", "faces", "width", "height"}
    (face,) = shape["faces"]
    assert set(face) == {"box", "emotion", "scores"}
    assert len(face["box"]) == 4 and all(isinstance(v, int) for v in face["box"])
    assert list(face["scores"]) == list(EMOTIONS)


@pytest.mark.parametrize("orientation, stored_as", [(3, Image.Transpose.ROTATE_180), (6, Image.Transpose.ROTATE_90)])
def test_exif_rotated_copy_gives_the_same_box(
    recognizer: EmotionRecognizer, astronaut: Image.Image, orientation: int, stored_as: Image.Transpose
) -> None:
    upright = recognizer.analyze(jpeg(astronaut))
    exif = Image.Exif()
    exif[0x0112] = orientation  # "rotate 180" / "rotate 90 clockwise to view", as phones write it
    rotated = recognizer.analyze(jpeg(astronaut.transpose(stored_as), exif=exif))
    assert len(rotated.faces) == 1
    assert np.abs(np.subtract(rotated.faces[0].box, upright.faces[0].box)).max() <= 3
    assert rotated.emotion == upright.emotion


def test_box_is_in_original_pixels_of_a_large_photo(recognizer: EmotionRecognizer, astronaut: Image.Image) -> None:
    small = recognizer.analyze(jpeg(astronaut)).faces[0].box
    large = recognizer.analyze(jpeg(astronaut.resize((2048, 2048), Image.Resampling.BICUBIC)))
    assert (large.width, large.height) == (2048, 2048)
    assert np.abs(np.subtract(large.faces[0].box, [4 * v for v in small])).max() <= 12


def test_two_face_composite_yields_two_faces(recognizer: EmotionRecognizer, astronaut: Image.Image) -> None:
    composite = Image.new("RGB", (1024, 512))
    composite.paste(astronaut, (0, 0))
    composite.paste(astronaut.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (512, 0))
    analysis = recognizer.analyze(jpeg(composite))
    assert len(analysis.faces) == 2
    left, right = analysis.faces  # faces are reported left to right
    assert left.box[0] + left.box[2] <= 512 <= right.box[0]
    assert left.emotion == right.emotion == analysis.emotion == "happy"


@pytest.mark.parametrize("tall", [False, True])
def test_small_face_in_a_long_picture_is_found_in_a_square_window(
    recognizer: EmotionRecognizer, astronaut: Image.Image, tall: bool
) -> None:
    # The face is ~50 px in a 1000x250 (or 250x1000) picture: too small in the whole picture's letterbox for
    # either model, twice as large in the 250x250 window at the picture's end.
    corner = (0, 710) if tall else (710, 0)
    canvas = Image.new("RGB", (250, 1000) if tall else (1000, 250), (90, 110, 130))
    canvas.paste(astronaut.resize((250, 250), Image.Resampling.BOX), corner)
    centre = [offset + at * 250 / 512 for offset, at in zip(corner, ASTRONAUT_FACE_CENTRE, strict=True)]
    assert not any(model.detect(canvas) for model in recognizer.detector.models)
    (face,) = recognizer.analyze(jpeg(canvas)).faces
    x, y, w, h = face.box
    assert abs(x + w / 2 - centre[0]) < w / 3 and abs(y + h / 2 - centre[1]) < h / 3


def test_small_face_missed_at_first_is_found_by_a_closer_look(
    recognizer: EmotionRecognizer, astronaut: Image.Image
) -> None:
    # The face is ~30 px in a square 1000x1000 picture (so no square windows): both models give it 0.3-0.4,
    # under the 0.5 a face needs; the short-range model on a window around it confirms it at 0.97.
    canvas = Image.new("RGB", (1000, 1000), (90, 110, 130))
    canvas.paste(astronaut.resize((130, 130), Image.Resampling.BOX), (400, 300))
    centre = [offset + at * 130 / 512 for offset, at in zip((400, 300), ASTRONAUT_FACE_CENTRE, strict=True)]
    assert not any(model.detect(canvas) for model in recognizer.detector.models)
    (face,) = recognizer.analyze(jpeg(canvas)).faces
    x, y, w, h = face.box
    assert abs(x + w / 2 - centre[0]) < w / 3 and abs(y + h / 2 - centre[1]) < h / 3


@pytest.mark.parametrize("colour", [(128, 128, 128), (255, 255, 255), (0, 0, 0)])
def test_blank_image_has_no_faces(recognizer: EmotionRecognizer, colour: tuple[int, int, int]) -> None:
    analysis = recognizer.analyze(jpeg(Image.new("RGB", (640, 480), colour)))
    assert analysis == Analysis([], None, 640, 480)
    assert analysis.to_dict() == {"emotion": None, "faces": [], "width": 640, "height": 480}


def test_tight_face_crop_is_classified_whole(recognizer: EmotionRecognizer, shared_data: Path) -> None:
    with gzip.open(shared_data / "fer2013" / "fer2013.csv.gz", "rt") as rows:
        next(rows)  # header: emotion,pixels,Usage
        pixels = next(rows).split(",")[1]
    face = np.array(pixels.split(), dtype=np.uint8).reshape(48, 48)  # FER2013's first face
    buffer = io.BytesIO()
    Image.fromarray(face).save(buffer, format="PNG")
    analysis = recognizer.analyze(buffer.getvalue())
    assert [face.box for face in analysis.faces] == [(0, 0, 48, 48)]
    assert analysis.emotion in EMOTIONS


def test_recognizer_is_thread_safe(recognizer: EmotionRecognizer, astronaut: Image.Image) -> None:
    pictures = [jpeg(astronaut), jpeg(astronaut.resize((640, 640))), jpeg(astronaut.crop((100, 0, 400, 300)))]
    expected = [recognizer.analyze(picture) for picture in pictures]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(recognizer.analyze, pictures * 8))
    assert results == expected * 8


def test_cores_are_shared_out_between_concurrent_calls(
    recognizer: EmotionRecognizer, shared_data: Path, astronaut: Image.Image
) -> None:
    cores = os.cpu_count() or 1
    assert recognizer.classifier.threads == cores  # one call at a time: every core for it
    pooled = EmotionRecognizer.from_settings(model_settings(shared_data), concurrent_calls=cores)
    assert pooled.classifier.threads == 1 and all(model.threads == 1 for model in pooled.detector.models)
    picture = jpeg(astronaut)
    alone, shared = recognizer.analyze(picture), pooled.analyze(picture)
    assert [face.box for face in shared.faces] == [face.box for face in alone.faces]
    for ours, theirs in zip(shared.faces, alone.faces, strict=True):
        assert ours.scores == pytest.approx(theirs.scores, abs=1e-5)


def test_bad_bytes_raise_image_error(recognizer: EmotionRecognizer) -> None:
    with pytest.raises(ImageError, match="not an image"):
        recognizer.analyze(b"GIF? no, a text file\n")


def test_refuses_over_the_configured_pixel_limit(shared_data: Path) -> None:
    small_limit = EmotionRecognizer.from_settings(model_settings(shared_data, MOODRING_MAX_IMAGE_PIXELS="100000"))
    with pytest.raises(ImageError, match="decompression bomb"):
        small_limit.analyze(ASTRONAUT.read_bytes())  # 512x512 = 262,144 pixels


def test_annotate_draws_each_box_in_its_emotion_colour(recognizer: EmotionRecognizer) -> None:
    data = ASTRONAUT.read_bytes()
    analysis = recognizer.analyze(data)
    drawn = Image.open(io.BytesIO(annotate(data, analysis)))
    assert drawn.format == "PNG" and drawn.size == (512, 512)
    x, y, w, h = analysis.faces[0].box
    pixels = np.asarray(drawn.convert("RGB"))
    outline = pixels[y + h - 1, x + w // 4 : x + 3 * w // 4]  # the box's bottom edge
    assert (outline == COLOURS[analysis.faces[0].emotion]).all(axis=1).mean() > 0.9
    original = np.asarray(Image.open(ASTRONAUT).convert("RGB"))
    assert np.abs(pixels.astype(int) - original)[: y - 40].mean() < 3  # far from the label: untouched

    as_jpeg = Image.open(io.BytesIO(annotate(data, analysis, format="JPEG")))
    assert as_jpeg.format == "JPEG"


def test_a_picture_decoded_once_is_analysed_and_drawn_on_as_the_bytes_are(
    recognizer: EmotionRecognizer, astronaut: Image.Image
) -> None:
    data = jpeg(astronaut.resize((1600, 1600)))  # larger than the analysis reads it and than it is shown
    working = recognizer.decode(data)
    before = working.image.copy()
    analysis = recognizer.analyze_picture(working)
    assert analysis == recognizer.analyze(data)

    from_bytes = np.asarray(Image.open(io.BytesIO(annotate(data, analysis, max_side=640))), dtype=int)
    reused = np.asarray(Image.open(io.BytesIO(annotate(working, analysis, max_side=640))), dtype=int)
    assert reused.shape == from_bytes.shape == (640, 640, 3)
    assert np.abs(reused - from_bytes).mean() < 2  # scaled down from the analysis's picture, not decoded again
    assert Image.open(io.BytesIO(annotate(working, analysis))).size == (1024, 1024)  # the analysis's own size
    assert working.image.tobytes() == before.tobytes()  # drawn on a copy: the analysis's picture is unchanged


@pytest.mark.parametrize("angle", [-30, -15, 15, 30])
def test_rolled_head_is_turned_by_its_share_of_the_roll(
    recognizer: EmotionRecognizer, astronaut: Image.Image, angle: int
) -> None:
    def face_crop(picture: Image.Image) -> np.ndarray:
        (face,) = recognizer.detector.detect(picture)
        return _aligned_face(picture, face).astype(int)

    def turned(crop: np.ndarray, degrees: float) -> np.ndarray:
        return np.asarray(Image.fromarray(crop.astype(np.uint8)).rotate(degrees, Image.Resampling.BICUBIC), int)

    rolled = astronaut.rotate(angle, resample=Image.Resampling.BICUBIC, center=ASTRONAUT_FACE_CENTRE)
    crop, upright = face_crop(rolled), face_crop(astronaut)
    # The rolled head's crop is the upright one turned by the roll left over: 8-22 gray levels apart here
    # (keypoints move a little), against 35-55 from the upright crop turned by the whole roll.
    left_over = np.abs(crop - turned(upright, (1 - ROLL_SHARE) * angle)).mean()
    assert left_over < 25
    assert left_over < 0.6 * np.abs(crop - turned(upright, angle)).mean()
    analysis = recognizer.analyze(jpeg(rolled))
    assert [face.emotion for face in analysis.faces] == ["happy"]
