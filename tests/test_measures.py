"""tfstyle.measures (style gap, colour gap, content moved) and tfstyle.blobs (droplets) on small images.

The measures run with the seeded random VGG19 here: these tests check the arithmetic of
the contract (0 for the photo itself, 1 for the painting, normalized terms), not what
any number says about a style.
"""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tfstyle import blobs, measures, styles


@pytest.fixture(scope="module")
def network():
    from tfstyle import vgg

    return vgg.build_loss_network("random", measures.STYLE_LAYERS, measures.CONTENT_LAYER, seed=0)


@pytest.fixture(scope="module")
def painting():
    return styles.load_style_image("mosaic", 128)[0].astype(np.uint8)


def photo_like(h=96, w=128, seed=0):
    """A smooth colour field with grain: photo-like, unlike any painting."""
    rng = np.random.default_rng(seed)
    field = Image.fromarray(rng.uniform(60, 220, (3, 4, 3)).astype(np.uint8)).resize((w, h), Image.BICUBIC)
    return np.clip(np.asarray(field, np.float32) + rng.normal(0, 4, (h, w, 3)), 0, 255).astype(np.uint8)


def test_the_photo_itself_closes_nothing_and_moves_nothing(network, painting):
    m = measures.Measures(network, painting, painting_size=128)
    photo = photo_like()
    score = m.score(photo, photo)
    assert set(score) == set(measures.MEASURES)
    for name in measures.MEASURES:
        assert score[name] == pytest.approx(0.0, abs=1e-6), name


def test_the_painting_itself_closes_the_whole_gap(network, painting):
    """An output that is the painting (at the size it is scored at) has D = 0 and the painting's colours."""
    m = measures.Measures(network, painting, painting_size=128)
    photo = photo_like(*painting.shape[:2])
    score = m.score(photo, painting)
    for name in ("style_gap_closed", "style_gap_closed_fine", "style_gap_closed_coarse", "colour_gap_closed"):
        assert score[name] == pytest.approx(1.0, abs=1e-5), name
    assert score["content_moved"] > 0.3
    # Half way in pixels is part of the way in statistics.
    half = (photo.astype(np.float32) + painting) / 2
    assert 0.0 < m.score(photo, half.astype(np.uint8))["style_gap_closed"] < 1.0


def test_terms_are_normalized_by_the_painting_and_cover_every_layer_and_scale(network, painting):
    m = measures.Measures(network, painting, painting_size=128)
    terms = m.style_terms(photo_like())
    assert set(terms) == {(layer, s) for layer in measures.STYLE_LAYERS for s in measures.SCALES}
    # Each term is a distance relative to the painting's own Gram: scaling the features of every
    # layer (here: the whole image's contrast) changes raw Gram distances by orders of magnitude,
    # but an image with no signal at all is exactly 1 away from the painting at every term.
    for key, target in m.painting_grams.items():
        zero = np.zeros_like(target)
        assert np.sum((zero - target) ** 2) / np.sum(target ** 2) == 1.0
    raw = {key: float(np.sum((g - m.painting_grams[key]) ** 2)) for key, g in m.grams(photo_like()).items()}
    assert max(raw.values()) / min(raw.values()) > 10 * max(terms.values()) / min(terms.values())
    distance = m.style_distance(photo_like())
    assert distance["all"] == pytest.approx((distance["fine"] + distance["coarse"]) / 2, rel=1e-6)


def test_downsample_is_block_averaging():
    image = np.arange(6 * 8 * 3, dtype=np.float32).reshape(6, 8, 3)
    small = measures.downsample(image, 2)
    assert small.shape == (3, 4, 3)
    np.testing.assert_allclose(small[0, 0], image[:2, :2].mean(axis=(0, 1)))
    assert measures.downsample(image, 4).shape == (1, 2, 3)


def test_lab_of_known_colours():
    lab = measures.srgb_to_lab(np.array([[255, 255, 255], [0, 0, 0], [255, 0, 0], [128, 128, 128]]))
    np.testing.assert_allclose(lab[0], [100, 0, 0], atol=0.01)
    np.testing.assert_allclose(lab[1], [0, 0, 0], atol=0.01)
    np.testing.assert_allclose(lab[2], [53.24, 80.09, 67.20], atol=0.05)  # the standard sRGB red
    np.testing.assert_allclose(lab[3], [53.59, 0, 0], atol=0.05)


def test_sliced_wasserstein_is_zero_for_the_same_colours_and_grows_with_their_distance():
    a = photo_like()
    assert measures.sliced_wasserstein(a, a) == pytest.approx(0.0, abs=1e-9)
    assert measures.sliced_wasserstein(a, a[::-1, ::-1]) == pytest.approx(0.0, abs=1e-6)  # order does not count
    grey = lambda v: np.full((16, 16, 3), v, np.uint8)  # noqa: E731
    near, far = measures.sliced_wasserstein(grey(100), grey(110)), measures.sliced_wasserstein(grey(100), grey(200))
    assert 0 < near < far
    # A uniform shift by dL in L* moves every projection by d.(dL, 0, 0): SW = dL * sqrt(mean d_L^2).
    d = measures._directions()
    shift = measures.srgb_to_lab(np.array([110, 110, 110]))[0] - measures.srgb_to_lab(np.array([100, 100, 100]))[0]
    assert near == pytest.approx(shift * np.sqrt(np.mean(d[:, 0] ** 2)), rel=1e-6)


def test_score_refuses_outputs_of_another_size(network, painting):
    m = measures.Measures(network, painting, painting_size=128)
    with pytest.raises(ValueError, match="differ in size"):
        m.score(photo_like(96, 128), photo_like(64, 128))
    with pytest.raises(ValueError, match="at least 32 px"):
        m.score(photo_like(24, 128), photo_like(24, 128))


# ----------------------------------------------------------------------------- droplets


def textured(h=256, w=384, level=170, seed=0):
    """A bright photo with detail: mid-grey level plus structured texture."""
    rng = np.random.default_rng(seed)
    base = np.asarray(Image.fromarray(rng.uniform(level - 40, level + 40, (h // 8, w // 8, 3)).astype(np.uint8))
                      .resize((w, h), Image.BICUBIC), np.float32)
    return np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)


def draw(image, shapes):
    """``image`` with black shapes: ("disc", box, halo) a droplet-like disc in ``box`` fading out over
    ``halo`` more pixels (0: a crisp edge), ("line", points, width) a stroke."""
    im = Image.fromarray(image.copy())
    d = ImageDraw.Draw(im)
    for kind, box, width in shapes:
        if kind == "line":
            d.line(box, fill=(0, 0, 0), width=width)
    out = np.asarray(im, np.float32)
    yy, xx = np.mgrid[:out.shape[0], :out.shape[1]]
    for kind, (x0, y0, x1, y1), halo in shapes:
        if kind == "disc":
            r = np.hypot(xx - (x0 + x1) / 2, yy - (y0 + y1) / 2) - (x1 - x0) / 2
            ink = np.clip(1 - r / halo, 0, 1) if halo else (r <= 0).astype(np.float32)
            out = out * (1 - ink[..., None]) + 2 * ink[..., None]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def test_a_dark_disc_on_a_bright_photo_is_a_droplet():
    photo = textured()
    output = draw(photo, [("disc", (150, 100, 190, 140), 12)])
    found = blobs.find_blobs(photo, output)
    assert len(found) == 1
    assert abs(found[0].x - 170) <= 2 and abs(found[0].y - 120) <= 2 and found[0].area > 1000
    assert blobs.find_blobs(photo, photo) == []
    # The photo at another size is resized to the output's.
    assert len(blobs.find_blobs(np.asarray(Image.fromarray(photo).resize((768, 512))), output)) == 1
    # The same disc with a crisp edge is a dark object, not a droplet.
    assert blobs.find_blobs(photo, draw(photo, [("disc", (150, 100, 190, 140), 0)])) == []


def test_the_photos_own_darkness_is_not_a_droplet():
    """The same disc where the photo is dark: the output keeps the photo's darkness, no droplet."""
    photo = draw(textured(level=60), [("disc", (150, 100, 190, 140), 12)])
    dark_photo = (textured() * 0.06).astype(np.uint8)  # a night photo: sRGB about 10, L* about 3
    assert blobs.find_blobs(photo, photo) == []
    assert blobs.find_blobs(dark_photo, draw(dark_photo, [("disc", (150, 100, 190, 140), 12)])) == []


def test_strokes_and_outlines_are_not_droplets():
    photo = textured()
    strokes = [("line", (20, 30 + 20 * i, 360, 60 + 25 * i), 4) for i in range(8)]
    strokes += [("line", (200, 20, 230, 240), 5), ("line", (40, 200, 160, 200), 3)]
    output = draw(photo, strokes)
    assert blobs.find_blobs(photo, output) == []
    # The crossing strokes form one network: it survives the opening, but fills little of its ellipse.
    assert all(p.fill < blobs.MIN_FILL for p in blobs.dark_patches(photo, output, min_area_scale=0))
    thin = draw(photo, [("line", (20, 40 * i, 360, 40 * i + 30), 2) for i in range(1, 6)])
    assert blobs.dark_patches(photo, thin, min_area_scale=0) == []  # 2 px strokes vanish in the opening
    # A long thick bar survives the opening but is no droplet: too elongated.
    bar = draw(photo, [("line", (40, 128, 340, 128), 14)])
    patches = blobs.dark_patches(photo, bar)
    assert patches and all(p.elongation > blobs.MAX_ELONGATION for p in patches)
    assert blobs.find_blobs(photo, bar) == []


def test_a_dark_patch_in_a_dark_surrounding_is_no_island():
    photo = textured()
    output = photo.copy()
    output[60:200, 100:300] = 25  # a big dark region (L* ~ 8), the disc in it
    output = draw(output, [("disc", (180, 110, 220, 150), 12)])
    assert blobs.find_blobs(photo, output) == []


@pytest.mark.slow
def test_evaluate_reports_the_measures(tmp_path):
    import json

    import keras

    from conftest import run_tfstyle
    from tfstyle.transformer import build_transformer

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        Image.fromarray(photo_like(48, 64, seed=i)).save(photos / f"p{i}.png")
    keras.utils.set_random_seed(0)
    weights = str(tmp_path / "t.weights.h5")
    build_transformer().save_weights(weights)
    out = tmp_path / "eval.md"
    r = run_tfstyle("evaluate", "--style=mosaic", f"--weights={weights}", f"--images={photos}", "--sizes=32",
                    "--nogatys", "--vgg_weights=random", "--style_size=64", "--measures", "--measure_size=64",
                    f"--out={out}")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "| network | style gap closed | fine | coarse | colour gap closed | content moved | blobs (images) |" in r.stdout
    saved = json.loads((tmp_path / "eval.json").read_text())["style_measures"]
    assert saved["images"] == 2 and saved["size"] == 64 and set(measures.MEASURES) <= set(saved)
    assert saved["content_moved"] > 0 and saved["blobs"] >= 0


@pytest.mark.slow
def test_bench_scores_folders_of_outputs(tmp_path):
    """bench/style_measures.py: one JSON line per folder; outputs are matched to photos by name, suffix allowed."""
    import json
    import os

    from conftest import REPO, run_python

    photos, same, shifted = tmp_path / "photos", tmp_path / "same", tmp_path / "shifted"
    for d in (photos, same, shifted):
        d.mkdir()
    for i in range(2):
        photo = photo_like(48, 64, seed=i)
        Image.fromarray(photo).save(photos / f"p{i}.png")
        Image.fromarray(photo).save(same / f"p{i}_styled.png")
        Image.fromarray(np.clip(photo.astype(int) + 60, 0, 255).astype(np.uint8)).resize((48, 36)).save(shifted / f"p{i}.png")
    r = run_python(os.path.join(REPO, "bench", "style_measures.py"), "--painting=mosaic", f"--photos={photos}",
                   "--outputs", str(same), str(shifted), "--vgg_weights=random", "--label=same", "--label=shifted")
    assert r.returncode == 0, r.stderr[-3000:]
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [ln["label"] for ln in lines] == ["same", "shifted"] and all(ln["images"] == 2 for ln in lines)
    assert lines[0]["style_gap_closed"] == pytest.approx(0.0, abs=1e-6) and lines[0]["content_moved"] == 0.0
    assert lines[1]["content_moved"] > 0 and lines[1]["colour_gap_closed"] != 0.0
    (tmp_path / "empty").mkdir()
    r = run_python(os.path.join(REPO, "bench", "style_measures.py"), "--painting=mosaic", f"--photos={photos}",
                   "--outputs", str(tmp_path / "empty"), "--vgg_weights=random")
    assert r.returncode == 1 and r.stderr.strip().splitlines()[-1] == f"error: {tmp_path / 'empty'}: no output for p0.png"
