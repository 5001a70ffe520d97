"""How long a process waits for the decider lease while another decides batch after batch.

One thread holds the lease for --work seconds (a batch), releases it, waits --gap seconds (reading the
next batch) and takes it again, as a busy decider does; meanwhile another client takes the lease
--tries times, each as a decision or an operator command would, and its waits are reported. A private
redis-server on a free port.

    python benchmarks/lease_wait.py --work 0.2 --gap 0.001
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dedup import decider  # noqa: E402
from dedup.keys import Keys  # noqa: E402
from tests.private_redis import PrivateRedis  # noqa: E402


def _noop(payload: bytes) -> None:
    """No journal is ever left in this benchmark."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=float, default=0.2, help="seconds the busy holder holds the lease per batch")
    parser.add_argument("--gap", type=float, default=0.001, help="seconds between its batches")
    parser.add_argument("--tries", type=int, default=20)
    args = parser.parse_args()
    keys = Keys("leasewait:")
    with tempfile.TemporaryDirectory() as workdir, \
            PrivateRedis(Path(workdir), args=["--appendonly", "no"]) as server:
        server.start()
        stop = threading.Event()

        def busy() -> None:
            lease = decider.Lease(server.client(), keys)
            while not stop.is_set():
                lease.acquire(_noop)
                time.sleep(args.work)
                lease.release()
                time.sleep(args.gap)

        holder = threading.Thread(target=busy)
        holder.start()
        time.sleep(args.work)
        waits = []
        other = decider.Lease(server.client(), keys)
        for _ in range(args.tries):
            started = time.monotonic()
            other.acquire(_noop)
            waits.append(time.monotonic() - started)
            other.release()
            time.sleep(args.work / 4)
        stop.set()
        holder.join()
    print(json.dumps({"work_s": args.work, "gap_s": args.gap, "tries": args.tries,
                      "wait_median_s": round(statistics.median(waits), 3), "wait_max_s": round(max(waits), 3)}))


if __name__ == "__main__":
    main()
