"""`qwen-free-api doctor`: each capability of each credential, tried against its real upstream.

The checks (doctor_checks.py) go through the same upstream clients the server uses, over one
`Http` whose recorder keeps every raw exchange: a broken check shows the upstream's own answer
(status and the start of its body, secrets replaced), and `--record DIR` writes the whole
recording there (doctor_record.py). Nothing here prints or writes a credential: credentials
appear masked, and every detail and raw answer passes the recording's scrubber.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from qwen_free_api.credentials import Credential, parse_credentials
from qwen_free_api.doctor_checks import CHECKS, Broken, Probe, Skipped
from qwen_free_api.doctor_record import Exchange, Recording
from qwen_free_api.doctor_scrub import Scrubber
from qwen_free_api.errors import GatewayError
from qwen_free_api.janitor import Janitor
from qwen_free_api.pool import file_tokens
from qwen_free_api.settings import Settings
from qwen_free_api.upstreams import Upstream, failures
from qwen_free_api.upstreams.cn import Cn
from qwen_free_api.upstreams.http import Http
from qwen_free_api.upstreams.intl import Intl

State = Literal["ok", "broken", "skipped"]
RAW_LIMIT = 240
CLEANUP_WAIT = 30.0  # seconds the background deletions of a check may take


@dataclass
class Result:
    """One check of one credential."""

    name: str
    state: State
    detail: str
    raw: str = ""  # the upstream's answer when broken (status + start of body, scrubbed)
    ms: int = 0
    exchanges: tuple[int, int] = field(default=(0, 0), repr=False)  # recording slice


@dataclass
class Report:
    """Every check of one credential (shown masked)."""

    credential: str
    backend: str
    results: list[Result]

    @property
    def broken(self) -> bool:
        return any(result.state == "broken" for result in self.results)


def credentials_from(tokens: list[str], settings: Settings) -> list[Credential]:
    """`--token` values (comma-separated allowed), else the configured QFA_TOKENS and the
    QFA_TOKENS_FILE, as the server's pool reads them."""
    raw = list(tokens)
    if not raw:
        raw = list(settings.tokens)
        if settings.tokens_file:
            raw += file_tokens(settings.tokens_file)
    return [found for value in raw for found in parse_credentials(value)]


async def diagnose(
    settings: Settings, credentials: list[Credential], skip: tuple[str, ...] = ()
) -> tuple[list[Report], Recording]:
    """Run every check for every credential, one after the other (a deterministic order)."""
    recording = Recording()
    http = Http(settings, recorder=recording)
    janitor = Janitor()
    upstreams: dict[str, Upstream] = {
        "cn": Cn(settings, http, janitor),
        "intl": Intl(settings, http, janitor),
    }
    reports: list[Report] = []
    try:
        for credential in credentials:
            probe = Probe(upstreams[credential.dialect], credential, settings)
            results = [
                await _run(name, check, probe, recording, janitor, skipped=name in skip)
                for name, check in CHECKS
            ]
            reports.append(Report(credential.masked, credential.dialect, results))
    finally:
        await janitor.drain(CLEANUP_WAIT)
        await http.close()
    scrubber = recording.scrubber(c.secret for c in credentials)
    for report in reports:
        for result in report.results:
            _finish(result, recording, scrubber)
    return reports, recording


async def _run(
    name: str,
    check: Any,
    probe: Probe,
    recording: Recording,
    janitor: Janitor,
    *,
    skipped: bool,
) -> Result:
    if skipped:
        return Result(name, "skipped", "skipped (--skip)")
    start, began = len(recording.exchanges), time.monotonic()
    state: State = "ok"
    try:
        detail = str(await check(probe))
    except Skipped as why:
        state, detail = "skipped", str(why)
    except (Broken, GatewayError) as error:
        state, detail = "broken", str(error)
    except Exception as error:  # an unexpected failure is a broken check, named as such
        state, detail = "broken", f"{type(error).__name__}: {error}"
    # The exchanges up to the failure: not the clean-up it set off (drained just below).
    end = len(recording.exchanges)
    await janitor.drain(CLEANUP_WAIT)  # the check's own clean-up, before the next one starts
    spent = round((time.monotonic() - began) * 1000)
    return Result(name, state, detail, ms=spent, exchanges=(start, end))


def _finish(result: Result, recording: Recording, scrubber: Scrubber) -> None:
    """Scrub the detail; for a broken check, attach the upstream's telling answer."""
    result.detail = scrubber.text(result.detail)
    if result.state != "broken":
        return
    exchange = telling(recording.exchanges[slice(*result.exchanges)])
    result.raw = raw_text(exchange, scrubber) if exchange is not None else ""


def telling(exchanges: list[Exchange]) -> Exchange | None:
    """The exchange that best shows what went wrong: a transport failure, else an HTTP error,
    else a body reporting a failure, else the last one."""
    for test in (_transport_failed, _http_error, _reports_failure):
        found = [exchange for exchange in exchanges if test(exchange)]
        if found:
            return found[-1]
    return exchanges[-1] if exchanges else None


def _transport_failed(exchange: Exchange) -> bool:
    return exchange.error is not None


def _http_error(exchange: Exchange) -> bool:
    return exchange.status is not None and exchange.status >= 400


def _reports_failure(exchange: Exchange) -> bool:
    body = exchange.body.decode("utf-8", "replace")
    if body.lstrip().startswith("<"):
        return True
    frames = [body, *(line.removeprefix("data:").strip() for line in body.splitlines())]
    return any(
        failures.failure_in(failures.parse_json(frame.encode()), credential="") is not None
        for frame in frames
        if frame.strip().startswith("{")
    )


def raw_text(exchange: Exchange, scrubber: Scrubber) -> str:
    """`METHOD /path → HTTP status: body start` with every secret replaced."""
    where = f"{exchange.method} {exchange.path}"
    if exchange.status is None:
        return scrubber.text(f"{where} → no response: {exchange.error or 'unknown'}")
    body = " ".join(scrubber.data(exchange.body).decode("utf-8", "replace").split())
    cut = body if len(body) <= RAW_LIMIT else body[:RAW_LIMIT] + "…"
    return scrubber.text(f"{where} → HTTP {exchange.status}: {cut or '(empty body)'}")


def save(directory: Path, reports: list[Report], recording: Recording, secrets: list[str]) -> int:
    """Write the recording and the report (`doctor.json`) to `directory`; files written."""
    files = recording.save(directory, recording.scrubber(secrets))
    (directory / "doctor.json").write_text(as_json(reports), encoding="utf-8")
    return len(files) + 1


def as_json(reports: list[Report]) -> str:
    """The machine-readable report."""
    document = {
        "ok": not any(report.broken for report in reports),
        "credentials": [
            {
                "credential": report.credential,
                "backend": report.backend,
                "checks": [_public(result) for result in report.results],
            }
            for report in reports
        ],
    }
    return json.dumps(document, ensure_ascii=False, indent=2)


def _public(result: Result) -> dict[str, Any]:
    found = asdict(result)
    found.pop("exchanges")
    return found


def as_table(reports: list[Report]) -> str:
    """The human-readable report: one block per credential, one row per check."""
    lines: list[str] = []
    for report in reports:
        lines.append(f"{report.credential} ({report.backend} backend)")
        for result in report.results:
            lines.append(f"  {result.name:10}  {result.state:7}  {result.detail}  [{result.ms} ms]")
            if result.raw:
                lines.append(f"  {'':10}  {'':7}  upstream said: {result.raw}")
        lines.append("")
    broken = sum(result.state == "broken" for report in reports for result in report.results)
    lines.append("all checks passed" if not broken else f"{broken} check(s) broken")
    return "\n".join(lines)


def command(tokens: list[str], record: Path | None, machine: bool, skip: tuple[str, ...]) -> int:
    """The CLI command's work: run, print, optionally record; the exit status."""
    import asyncio

    import click

    from qwen_free_api.doctor_checks import NAMES

    unknown = [name for name in skip if name not in NAMES]
    if unknown:
        raise click.UsageError(f"unknown check {unknown[0]!r}; checks: {', '.join(NAMES)}")
    settings = Settings()
    try:
        credentials = credentials_from(tokens, settings)
    except GatewayError as error:
        raise click.UsageError(str(error)) from None
    except OSError as error:
        raise click.UsageError(f"cannot read QFA_TOKENS_FILE: {error.strerror}") from None
    if not credentials:
        raise click.UsageError("no credential: pass --token, or set QFA_TOKENS or QFA_TOKENS_FILE")
    reports, recording = asyncio.run(diagnose(settings, credentials, skip))
    click.echo(as_json(reports) if machine else as_table(reports))
    if record is not None:
        count = save(record, reports, recording, [c.secret for c in credentials])
        click.echo(f"recorded {count} files in {record} (secrets replaced)", err=True)
    return 1 if any(report.broken for report in reports) else 0
