"""The ``tfstyle serve`` page in headless Chromium: upload a photo, pick a style, get the stylized image.

Models are a freshly initialized transformer (random weights) and a stand-in
multi-style model; the test checks the page's behaviour, not a style's quality.
Skips when Chromium, chromedriver or Selenium are missing (CI installs them).
"""

import os
import shutil
import tempfile

import pytest

from serve_support import REPO, STYLE_NAMES, encode, mosaic_and_blend_server, photo

pytestmark = pytest.mark.slow  # subprocesses, conversions or servers: the quick tier skips them

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1200,800"]

if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
    pytest.skip(f"no Chromium ({CHROMIUM}) or chromedriver ({CHROMEDRIVER}): "
                "apt-get install chromium chromium-driver", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")


@pytest.fixture(scope="module")
def port(tmp_path_factory):
    with mosaic_and_blend_server(tmp_path_factory, "--poll_seconds=1") as p:
        yield p


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_text(driver, element_id, predicate, timeout=120):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: predicate(d.find_element("id", element_id).text) and
                                                d.find_element("id", element_id).text)


def test_page_stylizes_an_uploaded_photo(port, browser, tmp_path):
    from selenium.webdriver.support.ui import Select

    src = tmp_path / "photo.png"
    src.write_bytes(encode(photo(96, 64)))
    browser.get(f"http://127.0.0.1:{port}/")
    wait_text(browser, "status", lambda t: t.startswith("Choose a photo"))
    models = Select(browser.find_element("id", "model"))
    assert [o.get_attribute("value") for o in models.options] == ["blend", "mosaic", "any_painting"]
    assert not browser.find_element("id", "painting_label").is_displayed()  # trained styles take no painting
    models.select_by_value("mosaic")
    browser.find_element("id", "photo").send_keys(str(src))
    browser.find_element("id", "go").click()
    status = wait_text(browser, "status", lambda t: t.startswith(("Done", "Error")))
    assert status.startswith("Done: 96x64 with mosaic"), status
    size = browser.execute_script("const r = document.getElementById('result'); return [r.naturalWidth, r.naturalHeight];")
    assert size == [96, 64]
    download = browser.find_element("id", "download")
    assert download.get_attribute("href").startswith("blob:") and download.get_attribute("download") == "photo_mosaic.png"


def test_page_shows_style_controls_for_a_multi_style_model(port, browser, tmp_path):
    from selenium.webdriver.support.ui import Select

    src = tmp_path / "photo.jpg"
    src.write_bytes(encode(photo(48, 48), "JPEG", quality=95))
    browser.get(f"http://127.0.0.1:{port}/")
    wait_text(browser, "status", lambda t: t.startswith("Choose a photo"))
    Select(browser.find_element("id", "model")).select_by_value("blend")
    wait_text(browser, "controls", lambda t: "strength" in t)
    labels = browser.find_element("id", "controls").text
    assert all(name in labels for name in STYLE_NAMES), labels
    assert len(browser.find_elements("css selector", "#controls input[type=range]")) == 4
    browser.find_element("id", "photo").send_keys(str(src))
    browser.find_element("id", "go").click()
    status = wait_text(browser, "status", lambda t: t.startswith(("Done", "Error")))
    assert status.startswith("Done: 48x48 with blend"), status


def test_page_takes_a_painting_for_the_any_painting_network(port, browser, tmp_path):
    from selenium.webdriver.support.ui import Select

    from tfstyle import images

    src, painting = tmp_path / "photo.png", tmp_path / "painting.jpg"
    src.write_bytes(encode(photo(80, 64)))
    painting.write_bytes(encode(images.resize_longer_side(images.load_image(
        os.path.join(REPO, "tfstyle", "styles", "the_scream.jpg")), 96), "JPEG", quality=90))
    browser.get(f"http://127.0.0.1:{port}/")
    wait_text(browser, "status", lambda t: t.startswith("Choose a photo"))
    Select(browser.find_element("id", "model")).select_by_value("any_painting")
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 60).until(lambda d: d.find_element("id", "painting_label").is_displayed())
    browser.find_element("id", "photo").send_keys(str(src))
    browser.find_element("id", "painting").send_keys(str(painting))
    browser.find_element("id", "go").click()
    status = wait_text(browser, "status", lambda t: t.startswith(("Done", "Error")))
    assert status.startswith("Done: 80x64 with any_painting"), status
    size = browser.execute_script("const r = document.getElementById('result'); return [r.naturalWidth, r.naturalHeight];")
    assert size == [80, 64]


def test_page_stylizes_an_uploaded_clip(port, browser, tmp_path):
    from selenium.webdriver.support.ui import Select

    from clips import make_clip

    src = make_clip(tmp_path / "clip.mp4", frames=3)
    browser.get(f"http://127.0.0.1:{port}/")
    wait_text(browser, "status", lambda t: t.startswith("Choose a photo"))
    Select(browser.find_element("id", "model")).select_by_value("mosaic")
    browser.find_element("id", "clip").send_keys(src)
    browser.find_element("id", "clip_go").click()
    status = wait_text(browser, "clip_status", lambda t: t.startswith(("Done", "Error")))
    assert status.startswith("Done with mosaic"), status
    download = browser.find_element("id", "clip_download")
    assert download.get_attribute("href").startswith("blob:") and download.get_attribute("download") == "clip_mosaic.mp4"
