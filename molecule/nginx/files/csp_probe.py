"""Load a page in headless Chromium and print, as JSON, the text of #status and the console log.

Usage: csp_probe.py URL. Runs on the client container with Debian's chromium, chromium-driver and
python3-selenium; CSP violations show up in the console log as "Refused to ..." errors.
"""

from __future__ import annotations

import json
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By


def main(url: str) -> int:
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        driver.set_page_load_timeout(60)
        driver.get(url)
        time.sleep(1)  # let DOMContentLoaded handlers and violation reports run
        status = driver.find_element(By.ID, "status").text
        logs = [{"level": e["level"], "message": e["message"]} for e in driver.get_log("browser")]
        print(json.dumps({"url": url, "title": driver.title, "status": status, "console": logs}))
    finally:
        driver.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
