"""A small scanner for credentials committed to the repository (git's tracked files).

Secrets belong in the environment (``.env``, never committed) or in Airflow connections; what
is committed may only reference them (``${VAR}``) or hold an obvious placeholder. The rules
catch private keys, cloud and chat tokens, credentials inside URLs, and secret-named settings
or variables set to a literal.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

MAX_BYTES = 2_000_000

RULES: dict[str, re.Pattern] = {
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY( BLOCK)?-----"),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "JSON web token": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    "credentials in a URL": re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:(?P<value>[^@\s/'\"]+)@"),
    # KEY=value / key: value / key = "value" where the name says it is secret.
    "secret literal": re.compile(
        r"(?i)\b[a-z0-9_]*(?:password|passwd|secret|token|api_?key|access_?key|fernet_?key|private_?key)[a-z0-9_]*"
        r"[\"']?\s*[:=]\s*(?P<quote>[\"']?)(?P<value>[^\s\"'#,;)}]{6,})(?P=quote)"
    ),
}

# A value that refers to a secret kept elsewhere, or is a placeholder, is not one.
_REFERENCE = re.compile(r"^(?:\$\{|\$\(|\$\$|\{|%\(|<|change-me|\*+$|(?:password|passwd|pass|secret|x+)$)", re.I)
# Unquoted, an identifier is a variable or a call (password=password, token=os.environ[...]).
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*(?:\(|\[|$)")

# Committed on purpose, each with its reason: (path, sha256 of the stripped line). Hashes, so that
# this file does not itself hold the lines it allows.
ALLOWED = {
    (".env.example", "6a0b12254654e77cbad79bba9d86a49ddb82e95754f8916df5652c7940721029"): (
        "S3_ACCESS_KEY_ID: an access key id is a user name, not a secret"
    ),
}


def line_hash(line: str) -> str:
    return hashlib.sha256(line.strip().encode()).hexdigest()


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    rule: str
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}: {self.text.strip()[:120]}"


def tracked_files(repo: Path) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=repo, capture_output=True, check=True).stdout
    return [p for p in out.decode().split("\0") if p]


def scan_text(path: str, text: str) -> list[Finding]:
    findings = []
    for number, line in enumerate(text.splitlines(), 1):
        for rule, pattern in RULES.items():
            for match in pattern.finditer(line):
                value, quoted = match.groupdict().get("value"), bool(match.groupdict().get("quote"))
                if value is not None and (
                    _REFERENCE.search(value) or (rule == "secret literal" and not quoted and _VARIABLE.search(value))
                ):
                    continue
                if (path, line_hash(line)) in ALLOWED:
                    continue
                findings.append(Finding(path, number, rule, line))
    return findings


def scan(repo: Path, files: list[str] | None = None) -> list[Finding]:
    findings = []
    for rel in files if files is not None else tracked_files(repo):
        path = repo / rel
        if not path.is_file() or path.stat().st_size > MAX_BYTES:
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue  # binary
        findings.extend(scan_text(rel, text))
    return findings
