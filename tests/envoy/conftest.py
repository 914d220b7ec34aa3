import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from harness import REVOKED_TOKEN_ID, Envoy  # noqa: E402


def revoke(plugin):
    plugin["revoked_token_ids"] = [REVOKED_TOKEN_ID]
    import json
    return json.dumps(plugin, indent=2)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    envoy = Envoy(tmp_path_factory.mktemp("envoy"), plugin_edit=revoke)
    yield envoy
    envoy.stop()


@pytest.fixture(autouse=True)
def reset(request):
    if "stack" in request.fixturenames:
        stack = request.getfixturevalue("stack")
        stack.upstream.requests.clear()
        stack.invoicer.requests.clear()
        stack.invoicer.mode = "ok"
    yield
