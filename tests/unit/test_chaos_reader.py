"""The chaos load's reader asks for every key's lookup and every page of the lanes' queries,
so that listings are kept (and must then be forgotten) for all of them during a run."""

from __future__ import annotations

from urllib.parse import unquote

from chaos.load import LoadRunner, deployment_path
from chaos.model import HistoryConfig, issue_pool
from chaos.queries import Q


def test_the_reader_reads_every_key_environment_history_and_issue() -> None:
    history = HistoryConfig(keys_per_lane=5, environments=2, issues=6)
    runner = LoadRunner("http://127.0.0.1:9", ("id", "secret"), lanes=2, history=history)
    paths = runner._reads()
    keys = [key for lane in runner.histories for key in lane.keys]
    assert len(keys) == 10
    for key in keys:
        assert deployment_path(key) in paths
    histories = {
        unquote(p) for p in paths if p.endswith("/deployments?limit=10") and "/pipelines/" in p
    }
    assert histories == {
        f"{Q}/pipelines/chaos-{lane}/environments/{environment}/deployments?limit=10"
        for lane in (0, 1)
        for environment in ("prod", "prod-2")
    }
    issues = {unquote(p) for p in paths if p.startswith(f"{Q}/issues/")}
    assert issues == {f"{Q}/issues/{issue}/deployments?limit=10" for issue in issue_pool(history)}


def test_without_a_read_pause_there_is_no_reader() -> None:
    runner = LoadRunner("http://127.0.0.1:9", ("id", "secret"), lanes=3, read_pause_s=None)
    assert len(runner._threads) == 3
    assert len(LoadRunner("http://127.0.0.1:9", ("id", "secret"), lanes=3)._threads) == 4
