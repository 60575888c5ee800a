"""The daemon loop and the pull runner on a scripted session: health, backoff, hooks, signals, exit status."""

import json
import os
import signal
import socket
from contextlib import contextmanager
from types import SimpleNamespace

import pytest

from objsync import runner
from objsync.daemon.config import DaemonConfig
from objsync.daemon.hooks import Hooks
from objsync.daemon.loop import run_loop
from objsync.daemon.serve import serve
from objsync.daemon.signals import Signals
from objsync.model import Kind, PassReport, Plan, Problem
from objsync.pull.session import SessionError

OK = PassReport(listed=1)
FAILED = PassReport(errors=(Problem("s3://b/p", "listing failed", Kind.LISTING),))
REJECTED_ONLY = PassReport(listed=1, errors=(Problem("../x", "unsafe key", Kind.REJECTED),))


class FakeSignals(Signals):
    """Signals that are never installed; `sleep` records the delay instead of waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.delays: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)


class FakeSession:
    """Plays back scripted reports, then asks the loop to stop. Its cfg has no interval: the daemon's is used."""

    def __init__(self, reports, signals: Signals, dest="/dags") -> None:
        self.cfg = SimpleNamespace(source="s3://b/p", dest=dest)
        self.reports, self.signals = list(reports), signals
        self.rescans = self.warmed = 0

    def run_pass(self, stop=None, *, on_plan=None, on_results=None) -> PassReport:
        report = self.reports.pop(0)
        if not self.reports:
            self.signals.stop.set()
        return report

    def request_rescan(self) -> None:
        self.rescans += 1

    def warm_up(self) -> None:
        self.warmed += 1


class Status:
    def __init__(self) -> None:
        self.seen = []

    @property
    def health(self):
        return self.seen[-1]

    @health.setter
    def health(self, state) -> None:
        self.seen.append((state.healthy, state.message))


def loop(reports, cfg=DaemonConfig(interval=1.0), **kwargs):
    signals = FakeSignals()
    session = FakeSession(reports, signals)
    status = Status()
    rc = run_loop(session, cfg, signals=signals, status=status, **kwargs)
    return rc, status.seen, signals, session


def test_health_follows_the_run_of_failures():
    rc, seen, _, _ = loop([FAILED, OK, FAILED, REJECTED_ONLY, FAILED, FAILED], DaemonConfig(max_failures=2))
    assert rc == 0
    assert seen == [(False, "Pull not finished: 1 consecutive failed pass; last error: s3://b/p: listing failed"),
                    (True, "GOOD"), (True, "GOOD"), (True, "GOOD"), (True, "GOOD"),
                    (False, "2 consecutive failed passes; last error: s3://b/p: listing failed")]


def test_health_tells_starting_from_failing_and_each_backoff_is_logged(caplog):
    caplog.set_level("INFO", logger="objsync")
    rc, seen, signals, _ = loop([FAILED, FAILED, FAILED, OK], DaemonConfig(interval=2.0, max_failures=-1))
    assert [message for _, message in seen[:3]] == [
        f"Pull not finished: {n} consecutive failed pass{'es' if n > 1 else ''}; last error: s3://b/p: listing failed"
        for n in (1, 2, 3)]
    backoffs = [r.getMessage() for r in caplog.records if "backing off" in r.getMessage()]
    assert backoffs == [f"pass failed ({n} in a row); backing off, next pass in {d:.1f}s"
                        for n, d in zip((1, 2, 3), signals.delays)]


def test_the_first_good_pass_says_the_folder_is_up_to_date_and_later_ones_stay_quiet(caplog):
    caplog.set_level("INFO", logger="objsync")
    loop([FAILED, OK, OK, PassReport(listed=1, fetched=1), OK])
    said = [r.getMessage() for r in caplog.records if "up to date" in r.getMessage()]
    assert said == ["/dags is up to date with s3://b/p (listed 1, nothing to fetch or delete)"]
    caplog.clear()
    loop([PassReport(listed=1, fetched=1), OK])  # a first pass that changed files says so in its summary instead
    assert not [r for r in caplog.records if "up to date" in r.getMessage()]


def test_the_interval_comes_from_the_daemon_config_and_failures_back_off():
    _, _, signals, _ = loop([PassReport(seconds=0.25), FAILED, FAILED, OK], DaemonConfig(interval=2.0))
    steady, first, second, after = signals.delays
    assert steady == 1.75  # the next pass starts one interval after this one started
    assert 1.0 <= first <= 2.0 and 2.0 <= second <= 4.0
    assert after == 2.0


def test_hooks_run_only_after_a_pass_that_changed_files(tmp_path):
    out = tmp_path / "hook"
    hooks = Hooks(exec_on_change=f'echo "$OBJSYNC_FETCHED $OBJSYNC_DELETED $OBJSYNC_DEST" >> {out}',
                  environ={"PATH": os.environ["PATH"]})
    loop([OK, PassReport(fetched=2), FAILED, PassReport(deleted=1), OK], DaemonConfig(hooks=hooks))
    assert out.read_text().splitlines() == ["2 0 /dags", "0 1 /dags"]


def test_sighup_asks_the_next_pass_to_look_at_everything():
    signals = FakeSignals()
    session = FakeSession([OK, OK], signals)
    signals.hup.set()
    run_loop(session, DaemonConfig(), signals=signals)
    assert session.rescans == 1 and not signals.hup.is_set()


def test_an_interrupted_pass_ends_the_loop_and_counts_nothing():
    observed, reported = [], []
    metrics = SimpleNamespace(observe=lambda report, failures: observed.append(failures))
    rc, seen, signals, session = loop([PassReport(interrupted=True), OK], metrics=metrics, sentry=reported.append)
    assert (rc, seen, observed, reported, signals.delays) == (0, [], [], [], [])
    assert session.reports == [OK]


def test_failures_go_to_metrics_and_sentry():
    observed, reported = [], []
    metrics = SimpleNamespace(observe=lambda report, failures: observed.append(failures))
    loop([FAILED, FAILED, OK], metrics=metrics, sentry=reported.append)
    assert observed == [1, 2, 0]
    assert reported == ["objsync pass failed: s3://b/p: listing failed"] * 2


def test_serve_refuses_an_address_in_use_before_any_pass(caplog):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        signals = FakeSignals()
        session = FakeSession([OK], signals)
        assert serve(session, DaemonConfig(status_addr=f"127.0.0.1:{taken.getsockname()[1]}"), signals) == 1
    assert session.reports == [OK] and session.warmed == 0
    assert "cannot serve status on 127.0.0.1:" in caplog.text


def test_serve_without_a_status_server_warms_up_and_loops():
    signals = FakeSignals()
    session = FakeSession([OK, OK], signals)
    assert serve(session, DaemonConfig(status_addr=None), signals) == 0
    assert session.warmed == 1 and session.reports == []


@pytest.fixture
def once(monkeypatch, capsys, tmp_path):
    """Run `run_pull` once on a scripted session; returns (exit status, stdout, session)."""
    def go(report, *, dry_run=False, as_json=False, hooks=Hooks(), refuse=None):
        signals = FakeSignals()
        session = FakeSession([report], signals, dest=tmp_path)

        @contextmanager
        def open_session(cfg):
            if refuse:
                raise SessionError(refuse)
            yield session

        monkeypatch.setattr(runner, "open_session", open_session)
        monkeypatch.setattr(runner, "Signals", lambda: SimpleNamespace(install=lambda: signals))
        signals.restore = lambda: None
        cfg = SimpleNamespace(once=True, dry_run=dry_run, dest=tmp_path)
        rc = runner.run_pull(cfg, DaemonConfig(hooks=hooks), as_json=as_json)
        return rc, capsys.readouterr().out, signals
    return go


def test_once_prints_one_json_document_and_exits_by_the_outcome(once):
    rc, out, _ = once(PassReport(listed=3, fetched=1), as_json=True)
    assert rc == 0 and json.loads(out)["fetched"] == 1
    assert once(FAILED)[0] == 1 and once(REJECTED_ONLY)[0] == 1


def test_an_interrupted_once_exits_with_the_signal(once):
    assert once(PassReport(interrupted=True))[0] == 128 + signal.SIGINT


def test_a_refused_session_is_exit_1_with_its_message(once, caplog):
    assert once(OK, refuse="d is locked by pid 7")[0] == 1
    assert "d is locked by pid 7" in caplog.text


def test_a_dry_run_prints_the_plan_and_runs_no_hook(once, tmp_path):
    plan = Plan(listed=1, fetches=(), deletes=("old.py",), displaced=(), rejected=(), skipped={"excluded": 2})
    marker = tmp_path / "touched"
    rc, out, _ = once(PassReport(deleted=1, plan=plan), dry_run=True, hooks=Hooks(touch_file=str(marker)))
    assert rc == 0 and out == "delete  old.py\nskip    2 (excluded)\n" and not marker.exists()
    once(PassReport(deleted=1), hooks=Hooks(touch_file=str(marker)))
    assert marker.exists()
