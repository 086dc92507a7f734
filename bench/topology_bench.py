"""The API benchmark (bench/api_bench.py: authenticated P2P transfers driven by wrk) through
the deploy/ topology: HAProxy in front of 1, then 2 API nodes, PgBouncer in transaction
mode, the Patroni primary with synchronous replication; against pgbench TPC-B on the same
primary (through HAProxy's writer port) in the same run.

    flock /tmp/bench.lock .venv/bin/python bench/topology_bench.py --seconds 10

Starts its own topology (deploy/topology.py) in a temporary directory and stops it. One
machine runs everything (PostgreSQL ×3, HAProxy, PgBouncer, the nodes, wrk): on a 2-core
machine a second node adds no cores, so the figures say what the layers cost, not how the
nodes scale on separate hosts.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.append(str(HERE))  # api_bench imports ledger_bench by name

import api_bench  # noqa: E402


def _topology() -> ModuleType:
    path = HERE.parent / "deploy" / "topology.py"
    spec = importlib.util.spec_from_file_location("mobipay_deploy_topology", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _haproxy(topo: Any, command: str) -> str:
    """A command on HAProxy's admin socket (``disable server api/api2``)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(topo.dir / "haproxy.sock"))
        s.sendall(command.encode() + b"\n")
        return s.recv(4096).decode()


def main(seconds: int) -> dict[str, Any]:
    exe = shutil.which("wrk")
    if exe is None:
        raise SystemExit(api_bench.INSTALL_WRK)
    t = _topology()
    workdir = Path(tempfile.mkdtemp(prefix="mobipay-topology-bench-"))
    topo = t.Topology(t.Options(dir=workdir, base_port=t.free_base(2), api_nodes=2, workers=0,
                                die_with_parent=True, app_pool_size=8, pgbouncer_pool=16,
                                extra_env={"MOBIPAY_LOG_LEVEL": "WARNING"}))
    result: dict[str, Any] = {"seconds": seconds}
    try:
        topo.up()
        reference = api_bench._ledger_bench().pgbench_tps(topo.direct_writer_url, seconds, print)
        result["pgbench_tps"] = round(reference, 1)
        subscribers, total_before = asyncio.run(api_bench.prepare(topo.direct_writer_url, print))
        data = workdir / "subscribers.txt"
        data.write_text("".join(f"{s.token} {api_bench.national_number(s.msisdn)} {s.pin}\n" for s in subscribers))
        via = api_bench.Server(topo.procs["haproxy"].pid, topo.ports.api, workdir / "haproxy.log")
        prefix = f"t{int(time.time() * 1000):x}"
        for nodes in (1, 2):
            if nodes == 1:
                print(_haproxy(topo, "disable server api/api2").strip() or "api2 disabled in HAProxy")
            else:
                print(_haproxy(topo, "enable server api/api2").strip() or "api2 enabled in HAProxy")
                t.wait_for(lambda: all(topo.api_up_in_haproxy().values()), 30, "both nodes in service")
            api_bench.run_wrk(exe, via, data, "p2p", api_bench.WARMUP_S, f"{prefix}w{nodes}", "warm-up")
            phase = api_bench.run_wrk(exe, via, data, "p2p", seconds, f"{prefix}n{nodes}", f"p2p {nodes} node(s)")
            result[f"api_tps_{nodes}_node"] = round(phase.tps, 1)
            result[f"api_p99_ms_{nodes}_node"] = round(phase.p99_ms, 2)
            result[f"ratio_{nodes}_node"] = round(phase.tps / reference, 3) if reference else None
            result[f"non_2xx_{nodes}_node"] = phase.non_2xx
            print(f"{nodes} node(s): {phase.tps:,.0f} transfers/s, p99 {phase.p99_ms:.1f} ms")
        verify_ok, total_after = asyncio.run(api_bench.check_books(topo.direct_writer_url,
                                                                   [s.account for s in subscribers]))
        result.update(verify_ok=verify_ok, balances_unchanged=total_before == total_after)
    finally:
        topo.down()
        shutil.rmtree(workdir, ignore_errors=True)
    print("RESULT " + json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="example: flock /tmp/bench.lock .venv/bin/python bench/topology_bench.py "
                                     "--seconds 10")
    parser.add_argument("--seconds", type=int, default=10, help="seconds of each load phase (pgbench as long)")
    args = parser.parse_args()
    out = main(args.seconds)
    sys.exit(0 if out.get("verify_ok") and out.get("balances_unchanged") else 1)
