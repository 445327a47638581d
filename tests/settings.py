"""Test settings: the project's settings on a Redis database of their own, so test queues and caches never
mix with a local dev instance."""

import os

# Always a database of its own, whatever REDIS_URL the shell exported for the dev instance.
os.environ["REDIS_URL"] = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

from scrm.settings import *  # noqa: F403

# Hashing passwords at full strength makes every fixture user cost a third of a second.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
