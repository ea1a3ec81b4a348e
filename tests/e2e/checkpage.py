#!/usr/bin/env python3
"""Drives xturnd's check page in Debian's headless Chromium (selenium and
chromedriver): opens URL?auto, waits for document.title to say
"xturn check: ok" or "... FAIL ...", prints window.xturnCheck as JSON and
exits 0 only for ok. Optionally saves a screenshot.
Usage: checkpage.py URL PROFILE_DIR [SCREENSHOT.png]"""
import json
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

url, profile = sys.argv[1], sys.argv[2]
opts = webdriver.ChromeOptions()
opts.binary_location = "/usr/bin/chromium"
for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
          "--user-data-dir=" + profile, "--window-size=1000,1100",
          # The test's certificate for turns: is its own.
          "--ignore-certificate-errors"):
    opts.add_argument(a)
drv = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
try:
    drv.get(url + "/?auto")
    deadline = time.time() + 90
    while time.time() < deadline and not drv.title.startswith("xturn check: "):
        time.sleep(0.5)
    result = drv.execute_script("return window.xturnCheck || null;")
    if len(sys.argv) > 3:
        drv.save_screenshot(sys.argv[3])
    print(json.dumps({"title": drv.title, "result": result}))
    sys.exit(0 if drv.title == "xturn check: ok" else 1)
finally:
    drv.quit()
