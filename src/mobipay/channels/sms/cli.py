"""``mobipay sms …``: the Kannel configuration, the gateway itself, and delivery states."""

from __future__ import annotations

import secrets
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from mobipay.channels.sms.kannel import KannelBoxes, KannelPorts, kannel_config
from mobipay.platform.cli_support import run, settings_or_exit

app = typer.Typer(help="The SMS channel through Kannel. Example: mobipay sms gateway --dir var/kannel",
                  no_args_is_help=True)

Dir = Annotated[Path, typer.Option(help="Where the configuration, logs and message store live")]
AdminPort = Annotated[int, typer.Option(help="bearerbox admin port (status at /status.txt)")]
BoxPort = Annotated[int, typer.Option(help="bearerbox port the smsbox connects to")]
SendPort = Annotated[int, typer.Option(help="smsbox sendsms port (MOBIPAY_KANNEL_SENDSMS_URL)")]
FakePort = Annotated[int, typer.Option(help="fake SMSC port the handset SIMULATOR connects to")]


def _write_config(workdir: Path, ports: KannelPorts) -> tuple[Path, str]:
    s = settings_or_exit()
    workdir.mkdir(parents=True, exist_ok=True)
    secret_file = workdir / "admin-password"
    if not secret_file.exists():
        secret_file.write_text(secrets.token_urlsafe(16))
        secret_file.chmod(0o600)
    admin_password = secret_file.read_text().strip()
    config = workdir / "kannel.conf"
    config.write_text(kannel_config(
        ports, workdir, inbound_url=s.sms_callback_url.rstrip("/") + "/sms/inbound",
        token=s.sms_inbound_token.get_secret_value(), username=s.kannel_username,
        password=s.kannel_password.get_secret_value(), sender=s.sms_sender, admin_password=admin_password))
    config.chmod(0o600)
    return config, admin_password


@app.command("kannel-config")
def kannel_config_command(
    workdir: Dir = Path("var/kannel"), admin_port: AdminPort = 13000, box_port: BoxPort = 13001,
    sendsms_port: SendPort = 13013, fake_smsc_port: FakePort = 10000,
) -> None:
    """Write kannel.conf for bearerbox and smsbox from mobipay's settings (callback URL, token,
    sendsms user). Example: mobipay sms kannel-config --dir var/kannel"""
    config, _ = _write_config(workdir, KannelPorts(admin_port, box_port, sendsms_port, fake_smsc_port))
    typer.echo(f"wrote {config}")
    typer.echo(f"set MOBIPAY_KANNEL_SENDSMS_URL=http://127.0.0.1:{sendsms_port}/cgi-bin/sendsms for the worker")


@app.command("gateway")
def gateway(
    workdir: Dir = Path("var/kannel"), admin_port: AdminPort = 13000, box_port: BoxPort = 13001,
    sendsms_port: SendPort = 13013, fake_smsc_port: FakePort = 10000,
) -> None:
    """Run Kannel (bearerbox + smsbox) on loopback until Ctrl-C, with a fresh configuration.
    Handsets: python -m mobipay.simulators.handset --port 10000. Example: mobipay sms gateway"""
    ports = KannelPorts(admin_port, box_port, sendsms_port, fake_smsc_port)
    config, admin_password = _write_config(workdir, ports)
    boxes = KannelBoxes(config, ports, admin_password)
    try:
        boxes.start()
    except (FileNotFoundError, RuntimeError, TimeoutError) as exc:
        boxes.stop(hard=True)
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Kannel ready: sendsms http://127.0.0.1:{sendsms_port}/cgi-bin/sendsms, fake SMSC on "
               f"127.0.0.1:{fake_smsc_port}, status http://127.0.0.1:{admin_port}/status.txt; logs in {workdir}")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        if any(p.poll() is not None for p in boxes.procs):
            typer.secho(f"a Kannel box exited; see {workdir}/*.log", fg="red", err=True)
            break
    boxes.stop()


@app.command("status")
def status() -> None:
    """Outbound SMS per delivery state (submitted, acked, delivered, failed…). Example: mobipay sms status"""
    counts = run(lambda c: c.sms.states())
    for state, count in sorted(counts.items()):
        typer.echo(f"{state:12} {count}")
    if not counts:
        typer.echo("no SMS sent through Kannel yet")
