"""tools/xdist_schedule.py: the replay of pytest-xdist's load scheduler that chose
--maxschedchunk 1 for tests/conftest.py."""
from tools.xdist_schedule import durations, simulate


def test_one_worker_runs_everything_in_turn():
    times = [1.0, 2.0, 3.0, 4.5]
    assert simulate(times, 1, 1) == simulate(times, 1, 2) == sum(times)
    assert simulate(times, 1, 1, start=20.0) == 20.0 + sum(times)


def test_adjacent_long_tests_pile_up_on_one_worker_unless_sent_one_at_a_time():
    # 8 long tests in a row after 16 medium ones, then many short ones, on 8 workers: sent in
    # runs, one worker takes several long tests back to back; one at a time, each worker one.
    times = [3.0] * 16 + [20.0] * 8 + [0.05] * 400
    one, two, default = (simulate(times, 8, chunk) for chunk in (1, 2, None))
    assert one < 30.0 < 40.0 < two < default
    assert one >= 20.0 + 3.0  # no worker finishes before its long test and a medium one


def test_durations_sum_setup_call_and_teardown(tmp_path):
    report = tmp_path / "report.txt"
    report.write_text("=== slowest durations ===\n"
                      "2.50s call     tests/a.py::test_x[1]\n"
                      "0.50s setup    tests/a.py::test_x[1]\n"
                      "0.25s teardown tests/a.py::test_x[1]\n"
                      "1.00s call     tests/b.py::test_y\n"
                      "1554 passed in 245.27s\n")
    assert durations(str(report)) == {"tests/a.py::test_x[1]": 3.25, "tests/b.py::test_y": 1.0}
