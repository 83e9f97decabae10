"""Opening a report page in real headless Chromium (Debian's, driven by playwright), as a person
opening index.html by double-click would: a file:// URL, no server.

  missing()      why the browser cannot run here (None when it can): the tests skip with it
  open_report()  loads the page and returns what it showed (PageResult)
"""
import io
import os
import shutil
from typing import List, NamedTuple, Optional

import numpy as np

CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
# Headless, as root, with no GPU and a closed network: WebGL through SwiftShader (Chromium needs
# --enable-unsafe-swiftshader for it since M130), and no background connections to Google's
# hosts (refused here, and noise in the console).
ARGS = ['--no-sandbox', '--disable-gpu', '--use-angle=swiftshader', '--enable-unsafe-swiftshader',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        '--no-first-run', '--disable-quic']
# Console messages that are the software WebGL's performance notes, not the page's errors.
BENIGN = ('GL Driver Message', 'GPU stall due to ReadPixels')


class PageResult(NamedTuple):
  model: Optional[str]  # <body data-model>: 'loaded', 'error' or 'none' (report.STATUS_SCRIPT).
  viewer_loaded: bool  # The model-viewer element's own `loaded` property.
  errors: List[str]  # Console errors, uncaught exceptions and failed requests.
  viewer: Optional[np.ndarray]  # (H, W, 3) uint8 screenshot of the model-viewer element.
  videos: List[dict]  # Each <video>'s readyState, error code and videoWidth.
  images: List[dict]  # Each <img>'s src, whether it loaded and its naturalWidth.


def missing() -> Optional[str]:
  if not os.path.exists(CHROMIUM):
    return (f'no Chromium at {CHROMIUM}: apt-get install chromium (Debian\'s package; .ci/run '
            'installs it)')
  try:
    import playwright.sync_api  # pylint: disable=unused-import
  except ImportError:
    return "playwright is not installed: pip install -e '.[test]'"
  return None


def open_report(path: str, timeout_s: float = 120.0) -> PageResult:
  """Opens file://path, waits for the viewer's outcome, and returns what the page showed."""
  from PIL import Image
  from playwright.sync_api import sync_playwright
  errors = []
  with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    try:
      page = browser.new_page(viewport={'width': 1200, 'height': 900})
      page.on('console', lambda m: errors.append(f'console.{m.type}: {m.text}')
              if m.type == 'error' and not any(b in m.text for b in BENIGN) else None)
      page.on('pageerror', lambda e: errors.append(f'uncaught: {e}'))
      page.on('requestfailed', lambda r: errors.append(f'request failed: {r.url[:200]}'))
      page.goto('file://' + os.path.abspath(path))
      page.wait_for_function('document.body.dataset.model !== undefined',
                             timeout=timeout_s * 1000)
      model = page.evaluate('document.body.dataset.model')
      page.wait_for_function("[...document.querySelectorAll('video')].every(v => "
                             'v.readyState >= 2 || v.error)', timeout=timeout_s * 1000)
      viewer, loaded = None, False
      element = page.query_selector('model-viewer')
      if element is not None:
        loaded = bool(page.evaluate("document.querySelector('model-viewer').loaded"))
        element.scroll_into_view_if_needed()
        page.wait_for_timeout(1500)  # A few frames of the viewer's render loop.
        viewer = np.asarray(Image.open(io.BytesIO(element.screenshot())).convert('RGB'))
      videos = page.evaluate("[...document.querySelectorAll('video')].map(v => ({src: "
                             "v.getAttribute('src'), ready: v.readyState, error: v.error && "
                             'v.error.code, width: v.videoWidth}))')
      images = page.evaluate("[...document.querySelectorAll('img')].map(i => ({src: "
                             "i.getAttribute('src'), complete: i.complete, width: "
                             'i.naturalWidth}))')
    finally:
      browser.close()
  return PageResult(model, loaded, errors, viewer, videos, images)
