"""Settings of the Celery workers started by the broadcast tests: a short chunk lease, so a chunk left
`calling` by a killed worker is taken over within seconds."""

from tests.settings import *  # noqa: F403

BROADCAST_CHUNK_LEASE_S = 4.0
