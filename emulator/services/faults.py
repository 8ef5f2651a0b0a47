"""Faults an emulated service can be told to show: latency, an error rate, or being down.

    crm=latency:2s            every call waits 2 s first
    hrm=error:0.5             half the calls fail with UNAVAILABLE
    hrm=error:1:INTERNAL      every call fails with INTERNAL
    crm=latency:200ms,error:0.1
    crm=down                  the service is stopped (its port refuses connections)

`ServiceInterceptor.fault` holds the current `Fault` of a service and may be replaced at
any time; health checks (grpc.health.v1) are never faulted, so a slow or failing service
still reports itself alive, as a real one with a sick dependency would.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import grpc

from runtime.config import format_duration, parse_duration


@dataclass(frozen=True)
class Fault:
    latency: float = 0.0  # seconds added before every call
    error_rate: float = 0.0  # share of calls that fail, 0..1
    error_code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE
    down: bool = False

    def __bool__(self) -> bool:
        return self != NO_FAULT

    def __str__(self) -> str:
        parts = ["down"] if self.down else []
        if self.latency:
            parts.append(f"latency {format_duration(self.latency)}")
        if self.error_rate:
            parts.append(f"{self.error_rate:.0%} {self.error_code.name}")
        return ", ".join(parts) or "none"


NO_FAULT = Fault()


def parse_fault(spec: str) -> tuple[str, Fault]:
    """'crm=latency:2s,error:0.5' -> ('crm', Fault(latency=2.0, error_rate=0.5)); ValueError if bad."""
    service, sep, rest = spec.partition("=")
    service = service.strip()
    if not sep or not service or not rest.strip():
        raise ValueError(f"{spec!r}: expected SERVICE=FAULT, e.g. crm=latency:2s, hrm=error:0.5, crm=down")
    fault = NO_FAULT
    for part in rest.split(","):
        kind, _, arg = part.strip().partition(":")
        try:
            fault = _apply(fault, kind, arg)
        except ValueError as exc:
            raise ValueError(f"{spec!r}: {exc}") from None
    return service, fault


def merge(faults: dict[str, Fault], service: str, fault: Fault) -> None:
    """Combine `--fault crm=latency:1s --fault crm=error:0.2` into one Fault per service."""
    old = faults.get(service, NO_FAULT)
    changed = {f.name: getattr(fault, f.name) for f in dataclasses.fields(Fault)
               if getattr(fault, f.name) != getattr(NO_FAULT, f.name)}
    faults[service] = dataclasses.replace(old, **changed)


def _apply(fault: Fault, kind: str, arg: str) -> Fault:
    if kind == "down" and not arg:
        return dataclasses.replace(fault, down=True)
    if kind == "latency":
        try:
            return dataclasses.replace(fault, latency=parse_duration(arg))
        except ValueError:
            raise ValueError(f"latency needs a duration like 2s or 500ms, not {arg!r}") from None
    if kind == "error":
        rate, _, code = arg.partition(":")
        try:
            value = float(rate)
        except ValueError:
            value = -1.0
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"error needs a rate between 0 and 1, not {rate!r}")
        status = grpc.StatusCode.UNAVAILABLE
        if code:
            status = getattr(grpc.StatusCode, code.upper(), None)
            if not isinstance(status, grpc.StatusCode) or status == grpc.StatusCode.OK:
                raise ValueError(f"unknown gRPC status code {code!r}")
        return dataclasses.replace(fault, error_rate=value, error_code=status)
    raise ValueError(f"unknown fault {kind!r} (expected latency:DURATION, error:RATE[:CODE] or down)")


async def apply_faults(servers: dict, faults: dict[str, Fault]) -> None:
    """Set each service's fault on its interceptor; stop the ones that are `down`."""
    for name in faults:
        if name not in servers:
            raise ValueError(f"no emulated service named {name!r} (known: {', '.join(servers)})")
    for name, fault in faults.items():
        servers[name].interceptor.fault = fault
        if fault.down:
            await servers[name].stop(0)
