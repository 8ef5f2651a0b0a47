"""Every HTTP status Falcon (or anything under our handlers) raises gets our envelope with a
code of its own, never INTERNAL unless it is a 500 (issue 9.7)."""

from __future__ import annotations

import falcon
import falcon.asgi
import falcon.testing
import pytest

from runtime.app import _on_http_error
from runtime.errors import for_status


class Raises:
    def __init__(self, error: falcon.HTTPError) -> None:
        self.error = error

    async def on_get(self, req, resp):
        raise self.error


def answer(error: falcon.HTTPError) -> falcon.testing.Result:
    app = falcon.asgi.App()
    app.add_route("/x", Raises(error))
    app.add_error_handler(falcon.HTTPError, _on_http_error)
    return falcon.testing.TestClient(app).simulate_get("/x")


@pytest.mark.parametrize("error, status, code", [
    (falcon.HTTPUriTooLong(), 414, "URI_TOO_LONG"),
    (falcon.HTTPRequestHeaderFieldsTooLarge(), 431, "HEADERS_TOO_LARGE"),
    (falcon.HTTPBadRequest(), 400, "VALIDATION_FAILED"),
    (falcon.HTTPContentTooLarge(), 413, "PAYLOAD_TOO_LARGE"),
    (falcon.HTTPRangeNotSatisfiable(10), 416, "REQUESTED_RANGE_NOT_SATISFIABLE"),
    (falcon.HTTPUnprocessableEntity(), 422, "UNPROCESSABLE_ENTITY"),
    (falcon.HTTPTooManyRequests(), 429, "RATE_LIMITED"),
    (falcon.HTTPNotImplemented(), 501, "NOT_IMPLEMENTED"),
    (falcon.HTTPServiceUnavailable(), 503, "BACKEND_UNAVAILABLE"),
    (falcon.HTTPVersionNotSupported(), 505, "HTTP_VERSION_NOT_SUPPORTED"),
    (falcon.HTTPError(499), 499, "HTTP_499"),  # no standard name: still not INTERNAL
    (falcon.HTTPInternalServerError(), 500, "INTERNAL"),
])
def test_every_status_has_its_own_code(error, status, code):
    result = answer(error)
    assert result.status_code == status
    doc = result.json
    assert doc["success"] is False and doc["code"] == code
    assert doc["message"] and doc["request_id"]


def test_no_status_but_500_is_internal():
    for status in range(400, 600):
        error = for_status(status)
        assert error.status == status
        assert (error.code == "INTERNAL") == (status == 500), status
