"""`make test` runs two pytest-xdist workers with `--dist loadgroup`; conftest marks each test
with the shared run it reads (else its module), so a session run is built on one worker only.
pytest-xdist honours the mark by suffixing the node id with `@<group>`; pytest 9 stopped reading
that suffix (its node ids moved to `item._id`) and the groups were silently ignored, which built
the nights, tuning and charlm runs twice. This checks the suffix is really there."""

import pytest

from conftest import run_group


def test_under_loadgroup_each_test_is_scheduled_with_the_group_conftest_gives_it(request):
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("not run under `pytest -n N --dist loadgroup` (make test does)")
    group = run_group(request.node) or request.node.module.__name__
    assert request.node.nodeid.endswith(f"@{group}"), request.node.nodeid



def test_no_test_reads_two_shared_runs_so_no_run_is_built_twice(request):
    from conftest import RUN_FIXTURES

    both = [item.nodeid for item in request.session.items
            if sum(name in item.fixturenames for name in RUN_FIXTURES) > 1]
    assert not both, f"these tests read two shared runs (split them, one run each): {both}"
