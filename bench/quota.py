"""The daily-quota counter under contention: charges a second, and what a refused charge costs.

    .venv/bin/python -m bench.quota                       # SQLite file in a temporary directory
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python -m bench.quota

Each of N threads charges one user's quota in a loop (`quota_take`, the statement every chat turn
runs) for a few seconds; the quota is set so that about half the charges are refused, so both the
charged path (one UPDATE) and the refused path (UPDATE, INSERT ... ON CONFLICT, UPDATE) are timed.
It checks the count at the end: charged == the quota, whatever the number of threads.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

from bench.common import django_setup

django_setup(temp_prefix="bytchat-quota-bench-")

from django.core.management import call_command  # noqa: E402
from django.db import close_old_connections, connection  # noqa: E402

from accounts.models import DailyUsage, User  # noqa: E402
from accounts.quotas import QuotaExceeded, quota_take  # noqa: E402


def run(threads: int, seconds: float, quota: int) -> dict[str, float]:
    email = f"bench-quota-{threads}-{time.time_ns()}@example.com"
    user = User.objects.create_user(email=email, password=None, daily_quota=quota)
    charged: list[float] = []
    refused: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    barrier = threading.Barrier(threads)

    def worker() -> None:
        mine_ok: list[float] = []
        mine_no: list[float] = []
        barrier.wait()
        try:
            while time.monotonic() < stop:
                start = time.perf_counter()
                try:
                    quota_take(user=user)
                    mine_ok.append(time.perf_counter() - start)
                except QuotaExceeded:
                    mine_no.append(time.perf_counter() - start)
        finally:
            close_old_connections()
            with lock:
                charged.extend(mine_ok)
                refused.extend(mine_no)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    began = time.monotonic()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.monotonic() - began
    stored = DailyUsage.objects.get(user=user).requests
    user.delete()
    assert stored == len(charged) <= quota, (stored, len(charged), quota)

    def ms(values: list[float], q: float) -> float:
        return 1000 * statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else float("nan")

    return {
        "threads": threads,
        "charged": len(charged),
        "refused": len(refused),
        "per_second": (len(charged) + len(refused)) / elapsed,
        "charged_p50_ms": ms(charged, 50),
        "charged_p99_ms": ms(charged, 99),
        "refused_p50_ms": ms(refused, 50),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="1,4,16", help="comma-separated thread counts")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    print(f"database: {connection.vendor}")
    print("threads  charged  refused  charges/s  charged p50 ms  charged p99 ms  refused p50 ms")
    for threads in [int(n) for n in args.threads.split(",")]:
        # A quota of about half what the first second shows, so both paths are timed.
        probe = run(threads, 0.5, 10**9)
        quota = max(1, int(probe["per_second"] * args.seconds / 2))
        row = run(threads, args.seconds, quota)
        print(
            f"{row['threads']:>7}  {row['charged']:>7}  {row['refused']:>7}  {row['per_second']:>9.0f}"
            f"  {row['charged_p50_ms']:>14.2f}  {row['charged_p99_ms']:>14.2f}  {row['refused_p50_ms']:>14.2f}"
        )


if __name__ == "__main__":
    main()
