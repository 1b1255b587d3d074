"""Tenant ids. The tenant of a request comes only from its verified access token (``app.auth``); a
client's ``X-Tenant-ID`` header is ignored everywhere."""

from __future__ import annotations

import re

# Use TENANT_RE.fullmatch: with .match, "$" also matches before a final newline ("demo\n" would pass).
TENANT_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
