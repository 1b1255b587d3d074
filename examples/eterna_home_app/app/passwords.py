"""Password hashing with argon2id (argon2-cffi's PasswordHasher and its default parameters)."""

from __future__ import annotations

import contextlib
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()


def hasher() -> PasswordHasher:
    """The PasswordHasher in use (its parameters decide when a stored hash needs rehashing)."""
    return _hasher


def set_hasher(new: PasswordHasher) -> None:
    """Replace the hasher (tests use cheap parameters). Clears the cached dummy hash."""
    global _hasher
    _hasher = new
    _dummy_hash.cache_clear()


def hash_password(password: str) -> str:
    """argon2id hash of ``password`` (str) in PHC string format (``$argon2id$v=19$...``)."""
    return _hasher.hash(password)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash("not a password: verified against when the user does not exist")


def verify_password(stored_hash: str | None, password: str) -> tuple[bool, str | None]:
    """Check ``password`` against ``stored_hash``.

    Returns (ok, new_hash): new_hash is a fresh hash to store when the password matched but the stored
    hash was made with other parameters, else None. When stored_hash is None or empty (unknown user,
    or a user without a password) the password is verified against a dummy hash, so that the time
    taken does not tell whether the user exists, and the result is (False, None). Never raises for a
    wrong password or a malformed stored hash (both are (False, None)).
    """
    if not stored_hash:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_dummy_hash(), password)
        return False, None
    try:
        _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, None
    return True, (_hasher.hash(password) if _hasher.check_needs_rehash(stored_hash) else None)
