"""The fault suite's record: each scenario fills in a row, and the run ends with the table.

A scenario test takes the `scenario` fixture, says what load and faults it
applied, and counts the events it expected against those it found
(`scenario.count(expected, delivered)`); the result column comes from the
test's outcome. The soak (tests/faults/soak/) runs only with `--soak`.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

from tests.support.fault_record import Scenario, format_table
from tests.support.fleet import Fleet, running_fleet
from tests.support.tokens import TokenMint

RECORD = pytest.StashKey[list[Scenario]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak", action="store_true", default=False, help="run the long soak (make soak)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: the long steady-load run of `make soak`, deselected unless --soak")
    config.stash[RECORD] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--soak", default=False):
        return
    soak = [item for item in items if item.get_closest_marker("soak")]
    if soak:
        config.hook.pytest_deselected(items=soak)
        items[:] = [item for item in items if not item.get_closest_marker("soak")]


@pytest.fixture
def scenario(request: pytest.FixtureRequest) -> Scenario:
    row = Scenario(name=_short_name(request.node))
    request.config.stash[RECORD].append(row)
    return row


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    row = getattr(item, "funcargs", {}).get("scenario")
    if isinstance(row, Scenario):
        if report.when == "call" or (report.failed and report.when != "teardown") or report.skipped:
            row.result = "pass" if report.passed else "FAIL"
            if report.skipped:
                row.result = "xfail (known)" if hasattr(report, "wasxfail") else "skipped"
        elif report.when == "teardown" and report.failed:
            row.result = "FAIL (teardown)"
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    rows = config.stash.get(RECORD, [])
    if rows:
        terminalreporter.write_sep("=", "fault scenarios")
        for line in format_table(rows):
            terminalreporter.write_line(line)


@pytest.fixture(scope="package")
def fleet(tmp_path_factory: pytest.TempPathFactory, mint: TokenMint) -> Iterator[Fleet]:
    """roles, skills and incentives as processes (SQLite) with the test company, one set for the suite
    (the fuzzing and the security scenarios share it)."""
    with running_fleet(tmp_path_factory.mktemp("fleet"), mint) as running:
        yield running


def _short_name(node: pytest.Item | pytest.Collector) -> str:
    """The test's name cut to fit the table, keeping its parameters ([sqlite], [postgresql])."""
    base, bracket, params = node.name.removeprefix("test_").partition("[")
    base = base if len(base) <= 50 else base[:47] + "..."
    return f"{base}{bracket}{params}"
