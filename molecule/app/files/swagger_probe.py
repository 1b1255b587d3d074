"""Use the API docs like a person: open /docs in headless Chromium, authorise with the OAuth2 password
flow, run "GET /api/v1/houses" with "Try it out", and print what happened as JSON (page title, the
response status and body Swagger UI shows, and the browser console, where CSP violations appear as
"Refused to ..." errors).

Usage: EMAIL=... PASSWORD=... swagger_probe.py https://edge/docs
Runs on the client container with Debian's chromium, chromium-driver and python3-selenium.
"""

from __future__ import annotations

import json
import os
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

OPERATION = "#operations-houses-list_houses_api_v1_houses_get"


def browser() -> webdriver.Chrome:
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
        "--window-size=1400,2000",
    ):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def click(driver: webdriver.Chrome, wait: WebDriverWait, selector: str) -> None:
    element = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, selector)))
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    element.click()


def main(url: str) -> int:
    driver = browser()
    result: dict = {"url": url, "steps": []}
    try:
        driver.set_page_load_timeout(60)
        wait = WebDriverWait(driver, 30)
        driver.get(url)
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".swagger-ui .info .title")))
        result["title"] = driver.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title").text
        result["steps"].append("rendered")

        click(driver, wait, ".scheme-container button.authorize")
        wait.until(ec.visibility_of_element_located((By.ID, "oauth_username"))).send_keys(os.environ["EMAIL"])
        driver.find_element(By.ID, "oauth_password").send_keys(os.environ["PASSWORD"])
        click(driver, wait, ".auth-container .auth-btn-wrapper button.authorize")
        # Swagger UI 5 turns the Authorize button into "Logout" once the token request succeeded.
        wait.until(ec.presence_of_element_located((By.XPATH, "//div[@class='auth-container']//button[.='Logout']")))
        result["steps"].append("authorised")
        click(driver, wait, ".auth-btn-wrapper button.btn-done")

        click(driver, wait, f"{OPERATION} .opblock-summary")
        click(driver, wait, f"{OPERATION} button.try-out__btn")
        click(driver, wait, f"{OPERATION} button.execute")
        cell = f"{OPERATION} .live-responses-table tbody .response-col_status"
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, cell)))
        result["status"] = driver.find_element(By.CSS_SELECTOR, cell).text.strip()
        result["body"] = driver.find_element(
            By.CSS_SELECTOR, f"{OPERATION} .live-responses-table tbody .response-col_description pre"
        ).text
        result["steps"].append("executed")
    except Exception as exc:  # noqa: BLE001 - report how far the page got, then the console
        result["error"] = f"{type(exc).__name__}: {exc}"[:500]
    finally:
        result["console"] = [{"level": e["level"], "message": e["message"]} for e in driver.get_log("browser")]
        driver.quit()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
