"""pip-audit over a lock file, and whether an advisory service really answers from here.

pip-audit's default service reads https://pypi.org/pypi/<name>/<version>/json; a mirror or a proxy
that serves the package index but not that JSON (or serves it without advisories) makes pip-audit
report "could not be audited" for every package. So before auditing, ask each service about a
release with published advisories (requests 2.19.0: CVE-2018-18074 and later ones); only a service
that names them is used. The probe and the audit are the only network calls of the test suite.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

KNOWN = ("requests", "2.19.0")  # a release with published advisories
PYPI_JSON = "https://pypi.org/pypi/{}/{}/json"
OSV_QUERY = "https://api.osv.dev/v1/query"
PROBE_TIMEOUT = 20  # seconds for one probe request: a bound on waiting, not synchronisation


def _ask(request: urllib.request.Request) -> tuple[Any, str]:
    try:
        with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT) as response:
            return json.load(response), ""
    except (OSError, ValueError) as exc:  # URLError, HTTPError and timeouts are OSErrors
        return None, f"{request.full_url} -> {type(exc).__name__}: {exc}"


def advisory_service() -> tuple[list[str] | None, str]:
    """pip-audit arguments for a service that answers, or None and why none does."""
    name, version = KNOWN
    data, pypi_error = _ask(urllib.request.Request(PYPI_JSON.format(name, version)))
    if isinstance(data, dict) and data.get("vulnerabilities"):
        return ["--vulnerability-service", "pypi"], ""
    if not pypi_error:
        pypi_error = f"PyPI's JSON for {name} {version} lists no advisories"
    query = {"package": {"name": name, "ecosystem": "PyPI"}, "version": version}
    body = json.dumps(query).encode()
    data, osv_error = _ask(urllib.request.Request(OSV_QUERY, data=body, method="POST"))
    if isinstance(data, dict) and data.get("vulns"):
        return ["--vulnerability-service", "osv"], ""
    if not osv_error:
        osv_error = f"OSV lists no advisories for {name} {version}"
    return None, f"no advisory service answers from here ({pypi_error}; {osv_error})"


def audit(lock: Path, service: list[str], cache: Path) -> tuple[list[str], str]:
    """Known vulnerabilities of the lock's pins ("name version: ID"), and pip-audit's errors.

    `--disable-pip` audits the pins as written (the lock is complete and hashed, nothing is
    resolved or installed); `--strict` makes a package that could not be audited an error.
    """
    command = [sys.executable, "-m", "pip_audit", "--disable-pip", "--strict", "-r", str(lock)]
    command += [
        *service,
        "--format",
        "json",
        "--progress-spinner",
        "off",
        "--cache-dir",
        str(cache),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    try:
        report = json.loads(result.stdout)
    except ValueError:
        return [], f"pip-audit exited {result.returncode}: {result.stderr.strip()[-2000:]}"
    found = [
        f"{dep['name']} {dep['version']}: {vuln['id']}"
        for dep in report.get("dependencies", [])
        for vuln in dep.get("vulns", [])
    ]
    error = "" if result.returncode == 0 or found else result.stderr.strip()[-2000:]
    return found, error
