import pytest

from envoy_proc import BUILDS, use_build
from harness import REVOKED_TOKEN_ID, Envoy


@pytest.fixture(scope="session", params=BUILDS)
def filter_build(request):
    """Every test here runs with the .wasm and with the dynamic module."""
    return request.param


@pytest.fixture(autouse=True)
def with_build(filter_build):
    use_build(filter_build)


def revoke(plugin):
    plugin["revoked_token_ids"] = [REVOKED_TOKEN_ID]


@pytest.fixture(scope="module")
def stack(tmp_path_factory, filter_build):
    use_build(filter_build)
    with Envoy(tmp_path_factory.mktemp("envoy"), plugin_edit=revoke) as envoy:
        yield envoy


@pytest.fixture(autouse=True)
def reset(request):
    if "stack" in request.fixturenames:
        stack = request.getfixturevalue("stack")
        stack.upstream.requests.clear()
        stack.invoicer.requests.clear()
        stack.invoicer.mode = "ok"
    yield
