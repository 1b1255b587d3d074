"""The ceiling for comparison: a bare FastAPI app whose only endpoint returns a constant. Run on an app host with
that host's own virtualenv and the app's worker count (load_multitenant.sh), it bounds what any endpoint of the
real app can reach there: no database, no token check, no middleware."""

from fastapi import FastAPI

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/")
def constant() -> dict[str, str]:
    """The same small JSON body for every request."""
    return {"status": "ok"}
