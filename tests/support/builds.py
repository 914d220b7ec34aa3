"""The fixtures that run a suite with both builds of the filter: `filter_build` (the .wasm, then
the dynamic module) and `with_build`, which makes every Envoy a test starts load that build.
A conftest imports both; a fixture of wider scope that starts Envoy takes `filter_build` and
calls `use_build` itself (it is set up before `with_build` runs)."""

import pytest

from envoy_proc import BUILDS, use_build


@pytest.fixture(scope="session", params=BUILDS)
def filter_build(request):
    return request.param


@pytest.fixture(autouse=True)
def with_build(filter_build):
    use_build(filter_build)
