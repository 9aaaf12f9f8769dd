"""Bearer-token check for migration mutations. The token is compared in constant time and is
never logged or echoed: a failure says what was wrong with the header, not what it held."""

from __future__ import annotations

import hmac

from pydantic import SecretStr

__all__ = ["AuthFailure", "check_bearer"]


class AuthFailure(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


def check_bearer(authorization: str | None, expected: SecretStr | None) -> None:
    """Raise AuthFailure unless `authorization` is `Bearer <expected>`.

    401: no usable credentials (missing header, another scheme); 403: a wrong token;
    503: admin-api has no token configured, so nobody may change the migration.
    """
    if expected is None or not expected.get_secret_value():
        raise AuthFailure(503, "mutations_disabled",
                          "CUTOVER_ADMIN_TOKEN is not set on admin-api: migration changes are "
                          "disabled")
    if not authorization:
        raise AuthFailure(401, "unauthorized",
                          "missing 'Authorization: Bearer <token>' header")
    scheme, _, given = authorization.strip().partition(" ")
    given = given.strip()
    if scheme.lower() != "bearer" or not given:
        raise AuthFailure(401, "unauthorized",
                          "the Authorization header must be 'Bearer <token>'")
    # Bytes, not str: compare_digest refuses non-ASCII str, and a client may send anything.
    if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"),
                               expected.get_secret_value().encode("utf-8")):
        raise AuthFailure(403, "forbidden", "the admin token is not valid")
