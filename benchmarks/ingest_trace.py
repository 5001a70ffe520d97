"""Memory of each process of `newsdedup ingest` over time (RSS, PSS, USS of the parent, the forked
fingerprinting child, the extraction workers), one JSON line per sample, and where the peak was.

    python benchmarks/ingest_trace.py --records 20000 --out trace.jsonl
"""
from __future__ import annotations
import argparse, json, os, subprocess, sys, tempfile, time, shutil
from pathlib import Path
import psutil
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.ingest_memory import write_jsonl, CLI, private_store

def role(p: psutil.Process, top: psutil.Process) -> str:
    if p.pid == top.pid:
        return "parent"
    try:
        cmd = " ".join(p.cmdline())
    except psutil.Error:
        return "?"
    if "forkserver" in cmd and p.ppid() == top.pid:
        return "forkserver"
    if "resource_tracker" in cmd:
        return "tracker"
    if p.ppid() == top.pid:
        return "fork-child"
    return "pool-worker"

def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=20000)
    ap.add_argument("--checkout", type=Path, default=ROOT)
    ap.add_argument("--file", type=Path)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--interval", type=float, default=0.25)
    ap.add_argument("--out", type=Path, default=Path("trace.jsonl"))
    ap.add_argument("--env", action="append", default=[])
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="trace-ingest-"))
    try:
        path = args.file or work / "articles.jsonl"
        if not args.file:
            write_jsonl(path, args.records)
        env = dict(os.environ)
        for kv in args.env:
            k, v = kv.split("=", 1); env[k] = v
        with private_store(work / "redis", 0) as (url, _):
            py = args.checkout / ".venv" / "bin" / "python"
            cmd = [str(py), "-c", CLI, "ingest", str(path), "--redis-url", url, "--workers", str(args.workers), "--quiet"]
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, cwd=args.checkout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
            top = psutil.Process(proc.pid)
            peak = {"rss": 0, "pss": 0}
            peak_at = {}
            with args.out.open("w") as out:
                while proc.poll() is None:
                    row = {"t": round(time.perf_counter() - t0, 2)}
                    procs = []
                    try:
                        procs = [top, *top.children(recursive=True)]
                    except psutil.Error:
                        pass
                    tot_rss = tot_pss = 0
                    for p in procs:
                        try:
                            m = p.memory_full_info()
                            r = role(p, top)
                        except psutil.Error:
                            continue
                        d = row.setdefault(r, {"n": 0, "rss": 0, "pss": 0, "uss": 0})
                        d["n"] += 1; d["rss"] += m.rss >> 20; d["pss"] += m.pss >> 20; d["uss"] += m.uss >> 20
                        tot_rss += m.rss; tot_pss += m.pss
                    row["rss"] = tot_rss >> 20; row["pss"] = tot_pss >> 20
                    if row["rss"] > peak["rss"]:
                        peak["rss"] = row["rss"]; peak_at["rss"] = row
                    if row["pss"] > peak["pss"]:
                        peak["pss"] = row["pss"]; peak_at["pss"] = row
                    out.write(json.dumps(row) + "\n")
                    time.sleep(args.interval)
            err = proc.stderr.read().decode(errors="replace").strip().splitlines()
            secs = time.perf_counter() - t0
            print(json.dumps({"seconds": round(secs, 1), "rate": round(args.records / secs, 1),
                              "peak_rss_mb": peak["rss"], "peak_pss_mb": peak["pss"],
                              "at_peak_rss": peak_at.get("rss"), "at_peak_pss": peak_at.get("pss"),
                              "last": err[-1] if err else ""}))
    finally:
        shutil.rmtree(work, ignore_errors=True)

if __name__ == "__main__":
    main()
