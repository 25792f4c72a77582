"""Draining one of three executors mid-stream, through the driver's HTTP API as an operator
would: no task fails, its receiver moves, its blocks (state, received input) move, and
the running totals stay exact."""

from __future__ import annotations

import operator
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from kubestream import StreamingContext
from kubestream.core.rdd import RDD
from kubestream.driver.api_auth import Access, api_token
from kubestream.driver.api_client import decommission
from kubestream.driver.decommission import Decommissioner
from kubestream.driver.status import context_status
from kubestream.driver.ui.server import Actions, UIServer
from kubestream.errors import ConfigError
from tests.integration.conftest import start_cluster, stop_cluster
from tests.integration.spool import SpoolReceiver, write_records

RECORDS = 6000
PER_FILE = 50


def test_draining_an_executor_loses_nothing_and_fails_no_task(tmp_path: Path) -> None:
    cluster = start_cluster(executors=3)
    engine = cluster.engine
    spool = tmp_path / "spool"
    spool.mkdir()
    ssc = StreamingContext(0.5, engine=engine)
    totals: dict[int, dict[int, int]] = {}

    def keep_totals(batch_time: int, rdd: RDD) -> None:
        totals[batch_time] = dict(rdd.collect())

    keys = ssc.receiver_stream(SpoolReceiver(str(spool))).map(lambda n: (n % 7, 1))
    keys.reduce_by_key(operator.add).update_state_by_key(
        lambda counts, old: sum(counts) + (old or 0)
    ).foreach_rdd(keep_totals)
    decommissioner = Decommissioner(engine, ssc.receiver_tracker)
    ui = UIServer(
        lambda limit: context_status(ssc, "drain-test", limit, decommissioner.outcomes),
        CollectorRegistry(),
        "127.0.0.1",
        0,
        Actions(decommissioner.start),
        access=Access(read=None, change=api_token(cluster.keys.secret)),
    )
    url = f"http://127.0.0.1:{ui.port}"

    def feed() -> None:
        for first in range(0, RECORDS, PER_FILE):
            write_records(spool, first, PER_FILE)
            time.sleep(0.02)

    feeder = threading.Thread(target=feed)
    ssc.start()
    try:
        feeder.start()
        deadline = time.monotonic() + 60
        while not sum(latest(totals).values()) and time.monotonic() < deadline:
            time.sleep(0.05)  # drain mid-stream: once records are flowing
        victim = ssc.receiver_tracker.receivers()[0].executor_id
        assert victim is not None
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(
                urllib.request.Request(
                    f"{url}/api/v1/executors/{victim}/decommission", method="POST"
                )
            )
        assert refused.value.code == 401
        assert victim in engine.executor_ids(), "an unauthenticated request drained an executor"
        with pytest.raises(ConfigError, match="no executor 'exec-9'"):
            decommission(url, "exec-9", api_token(cluster.keys.secret), 10)

        outcome = decommission(url, victim, api_token(cluster.keys.secret), 120)

        assert outcome == "decommissioned"
        assert victim not in engine.executor_ids()
        assert cluster.executors.processes[victim].wait(30) == 0
        feeder.join()
        deadline = time.monotonic() + 60
        while sum(latest(totals).values()) < RECORDS and time.monotonic() < deadline:
            time.sleep(0.1)
        receiver_host = ssc.receiver_tracker.receivers()[0].executor_id
    finally:
        ssc.stop(stop_engine=False)
        ui.close()
        stop_cluster(cluster)
    assert latest(totals) == dict(Counter(n % 7 for n in range(RECORDS)))
    assert receiver_host not in (None, victim), "the receiver was not moved"
    assert engine.task_scheduler.tasks_failed == 0
    assert not [b for b in ssc.batches if b.failed]


def latest(totals: dict[int, Any]) -> Any:
    return totals[max(totals)] if totals else {}
