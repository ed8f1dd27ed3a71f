"""The CPU thread choice: torch gets the cores that are free, unless the user chose."""

import os
import subprocess
import sys

import pytest

from proteus_id.cpu_threads import choose_threads
from proteus_id.errors import UserError


@pytest.mark.parametrize("load, cores, expected", [
    (0.1, 2, 2),    # idle laptop: every core
    (1.2, 2, 1),    # one core busy
    (2.7, 2, 1),    # both busy: still one thread, never zero
    (3.4, 8, 5),
    (0.0, 1, 1),
])
def test_threads_follow_free_cores(load, cores, expected):
    threads, why = choose_threads(env={}, load=load, cores=cores)
    assert threads == expected
    assert f"{load:.1f} cores busy" == why


def test_user_choice_wins():
    assert choose_threads(env={"OMP_NUM_THREADS": "3"}, load=9.0, cores=2)[0] is None
    assert choose_threads(env={"PROTEUS_ID_THREADS": "4"}, load=9.0, cores=2)[0] == 4
    assert choose_threads(env={"PROTEUS_ID_THREADS": "auto"}, load=0.0, cores=2)[0] == 2
    for bad in ("0", "many", "-1"):
        with pytest.raises(UserError, match="PROTEUS_ID_THREADS"):
            choose_threads(env={"PROTEUS_ID_THREADS": bad}, load=0.0, cores=2)


def _run_cli(env_extra: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "PROTEUS_ID_THREADS")}
    code = ("import os, sys; from proteus_id.cli.main import main; rc = main(sys.argv[1:]); "
            "print('OMP', os.environ.get('OMP_NUM_THREADS')); sys.exit(rc)")
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          env={**env, **env_extra, "HF_HUB_OFFLINE": "1"}, timeout=120)


def test_cli_sets_threads_for_child_processes_and_rejects_bad_values():
    done = _run_cli({"PROTEUS_ID_THREADS": "1"}, "demo", "--list")
    assert done.returncode == 0, done.stderr
    assert "OMP 1" in done.stdout
    done = _run_cli({"OMP_NUM_THREADS": "2", "PROTEUS_ID_THREADS": "1"}, "demo", "--list")
    assert "OMP 2" in done.stdout  # the user's OMP_NUM_THREADS is never overridden
    done = _run_cli({"PROTEUS_ID_THREADS": "lots"}, "demo", "--list")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "PROTEUS_ID_THREADS" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="needs Linux /proc/stat")
def test_busy_cores_sees_a_spinning_process():
    from proteus_id.cpu_threads import busy_cores

    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        import time

        time.sleep(0.5)
        busy, why = busy_cores(sample_seconds=0.5)
    finally:
        spinner.kill()
    assert busy >= 0.5, why  # one core held by the spinner (others may be busy too)
    assert "cores busy" in why
