"""`clickhaul check|run|status matomo` as a user runs them: one-line errors, a summary, watermarks, and a token that
never leaves the POST bodies."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from simulators.matomo import DEMO_VIEW_TOKEN, MatomoSimulator
from sources.common.clock import wall_time
from tests.support import files_containing, run_cli
from tests.support.matomo import hit, track


def cli_env(simulator: MatomoSimulator, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "SOURCES__MATOMO__BASE_URL": simulator.url,
        "SOURCES__MATOMO__TOKEN_AUTH": DEMO_VIEW_TOKEN,
        "DLT_DATA_DIR": str(tmp_path / "dlt"),
        **extra,
    }


def test_check_names_the_sites_and_a_wrong_token_is_one_line(simulator: MatomoSimulator, tmp_path: Path) -> None:
    ok = run_cli("check", "matomo", env=cli_env(simulator, tmp_path), cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("ok: matomo") and "token accepted, 3 site(s)" in ok.stdout
    bad = run_cli(
        "check", "matomo", env=cli_env(simulator, tmp_path, SOURCES__MATOMO__TOKEN_AUTH="e" * 32), cwd=tmp_path
    )
    assert bad.returncode == 1
    assert "refused sources.matomo.token_auth" in bad.stderr and "e" * 32 not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    unknown = run_cli("run", "matomo", env=cli_env(simulator, tmp_path, SOURCES__MATOMO__SITE_IDS="4"), cwd=tmp_path)
    assert unknown.returncode == 1 and "unknown matomo site id 4" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    missing = run_cli("run", "matomo", env=cli_env(simulator, tmp_path, SOURCES__MATOMO__TOKEN_AUTH=""), cwd=tmp_path)
    assert missing.returncode == 1 and "SOURCES__MATOMO__TOKEN_AUTH" in missing.stderr


def test_run_and_status_keep_the_token_out_of_urls_logs_and_files(simulator: MatomoSimulator, tmp_path: Path) -> None:
    now = wall_time()
    track(simulator, [hit(1, n, now - 3600 - n * 60, f"https://site1.example/p/{n}") for n in range(5)])
    day = dt.datetime.fromtimestamp(now, dt.UTC).date()
    env = cli_env(simulator, tmp_path, SOURCES__MATOMO__START_DATE=(day - dt.timedelta(days=3)).isoformat())
    result = run_cli("-v", "run", "matomo", "--progress", "log", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "visits" in result.stdout and "visits_summary" in result.stdout
    assert "HTTP Request" in result.stderr  # verbose logging really was on
    status = run_cli("status", "matomo", env=env, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "visits" in status.stdout and day.isoformat() in status.stdout
    output = result.stdout + result.stderr + status.stdout + status.stderr
    assert DEMO_VIEW_TOKEN not in output
    assert files_containing(tmp_path, [DEMO_VIEW_TOKEN]) == []
    reads = [request for request in simulator.requests if request.path.endswith("index.php")]
    assert reads and all("token_auth" not in request.query for request in reads)
    assert all(DEMO_VIEW_TOKEN in request.body.decode() for request in reads)


def test_backfill_loads_day_by_day_and_resumes_nothing_twice(simulator: MatomoSimulator, tmp_path: Path) -> None:
    now = wall_time()
    today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    track(simulator, [hit(1, n, now - 86400 * (n % 3) - 3600, f"https://site1.example/b/{n}") for n in range(9)])
    env = cli_env(simulator, tmp_path, SOURCES__MATOMO__SITE_IDS="1")
    start = (today - dt.timedelta(days=3)).isoformat()  # the oldest hit may fall before midnight
    args = ("backfill", "matomo", "--start", start, "--end", today.isoformat(), "--resources", "visits,visits_summary")
    result = run_cli(*args, "--progress", "off", "--database", str(tmp_path / "m.duckdb"), env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    import duckdb

    with duckdb.connect(str(tmp_path / "m.duckdb"), read_only=True) as connection:
        assert connection.execute("select count(*) from matomo.visits").fetchone() == (9,)
        assert connection.execute("select sum(nb_visits) from matomo.visits_summary").fetchone() == (9,)
