import pytest

from builds import filter_build, with_build  # noqa: F401 (fixtures: every test, both builds)
from envoy_proc import use_build
from harness import REVOKED_TOKEN_ID, Envoy


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
