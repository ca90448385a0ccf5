"""A password hasher that counts its work, for the equal-work test of the token endpoint."""

from django.contrib.auth.hashers import MD5PasswordHasher


class CountingMD5Hasher(MD5PasswordHasher):
    """MD5 (fast, tests only) counting each hash computed: ``encode`` is what
    both ``make_password`` and ``verify`` call once per password checked."""

    computed: list[str] = []

    def encode(self, password, salt):
        CountingMD5Hasher.computed.append("hash")
        return super().encode(password, salt)
