"""Password hashing parameters."""

from __future__ import annotations

from django.contrib.auth.hashers import Argon2PasswordHasher


class OwaspArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2id with OWASP's recommended minimum: 19 MiB of memory, 2 iterations, 1 lane.

    Django's defaults (100 MiB, 8 lanes) cost a sign-in about 0.3 s of a worker on a
    2-core machine and 100 MiB per concurrent sign-in, which is what a credential-
    stuffing attack would spend for us. Same ``argon2`` identifier: stored hashes keep
    verifying and are re-hashed with these parameters at the next sign-in.
    """

    time_cost = 2
    memory_cost = 19_456
    parallelism = 1
