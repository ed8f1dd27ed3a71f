"""How many CPU threads torch should use for this run.

torch starts one intra-op thread per core. When other work already keeps cores busy (a training run, another
generation), those threads wait on each other at every parallel region: on our 2-core machine `proteus-id demo`
took 43 s with 2 threads and 15.6 s with 1 while a training job used both cores (12.7 s idle). So unless the user
has chosen (`OMP_NUM_THREADS`, or `PROTEUS_ID_THREADS`), we give torch the cores that are free now, at least one.
"Now" is a 0.1 s sample of /proc/stat (the 1-minute load average lags by a minute both ways: it still counts a job
that just ended and misses one that just started); the load average is the fallback off Linux.
"""

from __future__ import annotations

import os
import sys

from .errors import UserError


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def busy_cores(sample_seconds: float = 0.1) -> tuple[float, str] | None:
    """How many of the cores we may run on other processes keep busy: CPU time spent outside idle on those cores
    over a short sample (we sleep through it, so it is the others'), or the 1-minute load average. None when
    neither is available."""
    import time

    try:
        ours = os.sched_getaffinity(0)
    except AttributeError:
        ours = None

    def totals() -> tuple[int, int, int]:
        total = idle = count = 0
        with open("/proc/stat") as f:
            for line in f:
                name, *values = line.split()
                if not (name.startswith("cpu") and name[3:].isdigit()):
                    continue
                if ours is not None and int(name[3:]) not in ours:
                    continue
                fields = [int(x) for x in values[:8]]
                total += sum(fields)
                idle += fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
                count += 1
        return total, idle, count

    try:
        total0, idle0, count = totals()
        time.sleep(sample_seconds)
        total1, idle1, _ = totals()
        if count and total1 > total0:
            busy = (1.0 - (idle1 - idle0) / (total1 - total0)) * count
            return busy, f"{busy:.1f} of {count} cores busy"
    except (OSError, ValueError, IndexError):
        pass
    try:
        load = os.getloadavg()[0]
        return load, f"load average {load:.1f}"
    except (AttributeError, OSError):
        return None


def choose_threads(env: dict[str, str] | None = None, load: float | None = None,
                   cores: int | None = None) -> tuple[int | None, str]:
    """(threads, why). threads is None when the user has chosen already (leave it alone)."""
    env = os.environ if env is None else env
    if env.get("OMP_NUM_THREADS"):
        return None, "OMP_NUM_THREADS is set"
    cores = available_cores() if cores is None else cores
    wanted = env.get("PROTEUS_ID_THREADS", "auto").strip().lower()
    if wanted != "auto":
        try:
            count = int(wanted)
        except ValueError:
            count = 0
        if count < 1:
            raise UserError(f"PROTEUS_ID_THREADS must be a positive integer or 'auto', not {wanted!r}")
        return count, "PROTEUS_ID_THREADS"
    if load is None:
        measured = busy_cores()
        if measured is None:  # nothing to measure on this platform: torch's default
            return None, "no CPU load figures"
        load, why = measured
    else:
        why = f"{load:.1f} cores busy"
    free = cores - int(round(load))
    threads = max(1, min(cores, free))
    return threads, why


def apply_thread_choice() -> str | None:
    """Set OMP_NUM_THREADS before torch is imported (child processes inherit it). Returns a note to log when the
    choice is below the core count, else None. A process that imported torch already keeps its own setting."""
    if "torch" in sys.modules:
        return None
    threads, why = choose_threads()
    if threads is None:
        return None
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if threads < available_cores() and why != "PROTEUS_ID_THREADS":
        return (f"other work keeps cores busy ({why}): using {threads} CPU thread(s); "
                f"set OMP_NUM_THREADS or PROTEUS_ID_THREADS to choose")
    return None
