from tests.api.fixtures import populated, tokens  # noqa: F401  (fixtures by name)
from wecom.sandbox.testing import sandbox, sandbox_server  # noqa: F401  (fixtures by name)
