"""deploy/: the configuration deploy/topology.py renders is complete and accepted by its
tools (HAProxy's own check), and the environment it gives the API nodes is one mobipay's
settings accept, pointing the writer and the reads through PgBouncer. The topology itself
runs in tests/e2e/test_failover.py."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mobipay.platform.config import Settings

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "topology.py"


def _render(tmp_path: Path) -> Path:
    out = tmp_path / "topo"
    done = subprocess.run([sys.executable, str(SCRIPT), "render", "--dir", str(out), "--base-port", "27000",
                           "--api-nodes", "3"], capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    return out


def test_every_file_is_rendered_without_a_placeholder_left(tmp_path: Path) -> None:
    out = _render(tmp_path)
    files = [out / "haproxy.cfg", out / "pgbouncer.ini", out / "mobipay.env",
             *(out / "pg" / f"pg{i}" / "patroni.yml" for i in (1, 2, 3)),
             *(out / "etcd" / f"etcd{i}" / "etcd.yml" for i in (1, 2, 3))]
    for f in files:
        text = f.read_text()
        assert "${" not in text, f
    haproxy = (out / "haproxy.cfg").read_text()
    assert haproxy.count("check port 2701") == 6  # 3 members, in the writer and the reader
    assert "GET /primary" in haproxy and "GET /replica" in haproxy
    assert len(re.findall(r"server api\d 127\.0\.0\.1:2703\d check", haproxy)) == 3
    patroni = (out / "pg" / "pg2" / "patroni.yml").read_text()
    assert "synchronous_mode: true" in patroni and "primary_start_timeout: 0" in patroni
    assert "127.0.0.1:27000,127.0.0.1:27001,127.0.0.1:27002" in patroni
    assert "pool_mode = transaction" in (out / "pgbouncer.ini").read_text()


@pytest.mark.skipif(shutil.which("haproxy", path="/usr/sbin:/usr/bin") is None, reason="needs Debian's haproxy")
def test_haproxy_accepts_its_configuration(tmp_path: Path) -> None:
    out = _render(tmp_path)
    haproxy = shutil.which("haproxy", path="/usr/sbin:/usr/bin")
    assert haproxy is not None
    done = subprocess.run([haproxy, "-c", "-f", str(out / "haproxy.cfg")], capture_output=True, text=True,
                          check=False, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_nodes_environment_is_valid_settings(tmp_path: Path) -> None:
    out = _render(tmp_path)
    env = {}
    for line in (out / "mobipay.env").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key[len("MOBIPAY_"):].lower()] = value
    s = Settings(_env_file=None, **env)
    assert s.database_pgbouncer is True
    assert s.database_url == "postgresql+asyncpg://postgres@127.0.0.1:27024/mobipay"
    assert s.database_read_url == "postgresql+asyncpg://postgres@127.0.0.1:27024/mobipay_ro"
    assert s.trusted_proxies == "127.0.0.1/32"


def test_the_script_says_how_to_use_it() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, check=False,
                          timeout=30)
    assert done.returncode == 0
    assert "deploy/topology.py up --dir" in done.stdout and "down --dir" in done.stdout
