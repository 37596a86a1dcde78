"""Wall time and peak memory of a command together with the processes it starts (`scan --jobs`).

    python benchmarks/tree_memory.py backup-preflight scan --snapshot /tmp/bp-1m.json --jobs 2 -q

`/usr/bin/time` reports the largest single process, which is not a run's memory once it forks
children that share its pages. This samples the command's process tree from /proc and sums each
process's proportional set size (PSS: a page shared by n processes counts 1/n in each), and prints
the peak of that sum (and of the summed RSS, which counts shared pages in every process). Linux only.

Sampling reads /proc/PID/smaps_rollup, which costs the kernel a walk of each process's page tables:
tens of milliseconds of CPU for a multi-GB tree. Sampled every 0.25 s, that took 30 s off the cores
a 1,000,000-VM `scan --jobs 2` needed on a 2-core machine (330 s against 298 s under /usr/bin/time).
So the pause after a sample is at least 0.25 s and at least 99 times what the sample cost (at most 1 %
of one core); the run's wall time is taken when it ends, not after a pause.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

GIB = 1024 ** 3


def tree(pid: int) -> list[int]:
    """The process and its descendants, as /proc lists them now."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    todo += [int(child) for child in children.read().split()]
        except OSError:  # it ended meanwhile
            continue
    return found


def memory(pid: int) -> tuple[int, int]:
    """(PSS, RSS) in bytes; zeros once the process has ended."""
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1]) * 1024
    except OSError:
        pass
    return pss, rss


#: The most of one core sampling may take: the pause after a sample is at least (1 / SHARE - 1) times its cost.
SHARE = 0.01


def measure(command: list[str], interval: float = 0.25, **popen: object) -> dict[str, float]:
    """Run `command`; its wall seconds, exit code, the peaks of its tree's summed PSS and RSS (GiB), and how
    many samples were taken."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, **popen)  # type: ignore[call-overload]
    ended = None
    peak_pss = peak_rss = 0
    processes = samples = 0
    while ended is None:
        cost = time.process_time()  # the kernel's walk is charged to this process
        sampled = [memory(pid) for pid in tree(proc.pid)]
        cost = time.process_time() - cost
        samples += 1
        pss = sum(p for p, _ in sampled)
        if pss > peak_pss:
            peak_pss, processes = pss, len(sampled)
        peak_rss = max(peak_rss, sum(r for _, r in sampled))
        try:
            proc.wait(timeout=max(interval, cost * (1 / SHARE - 1)))
            ended = time.perf_counter()
        except subprocess.TimeoutExpired:
            continue
    return {"seconds": ended - start, "exit": proc.returncode, "pss": peak_pss / GIB,
            "rss": peak_rss / GIB, "processes": processes, "samples": samples}


def measure_both(command: list[str], **popen: object) -> dict[str, float | str]:
    """`measure` of `command` run under `/usr/bin/time`, which adds the peak RSS of its largest process
    (`largest`, GiB: exact, where sampling may miss a short peak), what it wrote (`stdout`, `stderr`), and `peak`,
    the larger of `largest` and the summed PSS: the run's memory as docs/performance.md gives it."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        got: dict[str, float | str] = {**measure(["/usr/bin/time", "-f", "%M", *command], stdout=out, stderr=err,
                                                 **popen)}
        out.seek(0)
        err.seek(0)
        got["stdout"], got["stderr"] = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    got["largest"] = int(str(got["stderr"]).strip().splitlines()[-1]) / 1024 / 1024
    got["peak"] = max(float(got["largest"]), float(got["pss"]))
    return got


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        raise SystemExit(__doc__)
    try:
        got = measure(sys.argv[1:])
    except OSError as exc:
        raise SystemExit(f"tree_memory.py: cannot run {sys.argv[1]!r}: {exc.strerror or exc}") from None
    print(f"{got['seconds']:.1f} s, peak summed PSS {got['pss']:.2f} GiB ({got['processes']} processes), "
          f"peak summed RSS {got['rss']:.2f} GiB, exit {got['exit']}, {got['samples']} samples", file=sys.stderr)


if __name__ == "__main__":
    main()
