"""Log in to the app and make sure the tenant's house list has 50 rows; print the access token.

Used by the wrk benchmarks (stack_http.sh, app_ceiling.sh) on this machine or streamed into a lab container
(`python3 - BASE EMAIL PASSWORD < house_token.py`), so it needs only the standard library.

    python3 house_token.py BASE_URL EMAIL PASSWORD [HOST_HEADER]

BASE_URL is the app's own address (http://HOST:8000: the login is an app route), HOST_HEADER the Host to send when
the address is not one the app allows. Exits non-zero with urllib's error when the login or a request fails.
"""

from __future__ import annotations

import json
import sys
import urllib.parse
import urllib.request

ROWS = 50


def main(argv: list[str]) -> str:
    """Return an access token of EMAIL's tenant after creating houses until its list holds ROWS of them.

    argv: [BASE_URL, EMAIL, PASSWORD] or with a fourth item, the Host header. Raises urllib.error.URLError (HTTPError
    for a refused login or request), KeyError when the login's answer has no access_token and ValueError for a
    BASE_URL that is not http(s).
    """
    base, email, password = argv[:3]
    if not base.startswith(("http://", "https://")):
        raise ValueError(f"BASE_URL must be http:// or https://, got {base!r}")
    host = {"Host": argv[3]} if len(argv) > 3 else {}
    form = urllib.parse.urlencode({"username": email, "password": password}).encode()
    login = urllib.request.Request(base + "/api/v1/auth/token", data=form, headers=host)  # noqa: S310 - checked
    with urllib.request.urlopen(login, timeout=30) as resp:  # noqa: S310 - checked above
        token = json.loads(resp.read())["access_token"]
    headers = {**host, "Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(method: str, path: str, body: bytes | None = None) -> object:
        req = urllib.request.Request(base + path, data=body, headers=headers, method=method)  # noqa: S310 - checked
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - checked above
            return json.loads(resp.read())

    have = len(call("GET", f"/api/v1/houses?limit={ROWS}"))
    for i in range(have, ROWS):
        call("POST", "/api/v1/houses", json.dumps({"name": f"bench {i}", "address": f"{i} bench street"}).encode())
    return token


if __name__ == "__main__":
    print(main(sys.argv[1:]))
