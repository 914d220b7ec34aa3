"""The pinned tool and image versions, read from versions.env at the repository root: the one
place they are set (scripts/lib.sh sources it, docker-compose reads it as .env)."""

from procs import ROOT

VERSIONS_FILE = ROOT / "versions.env"


def pinned() -> dict:
    """versions.env as a dict: KEY=value lines, `#` comments and blank lines skipped."""
    versions = {}
    for number, line in enumerate(VERSIONS_FILE.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.isidentifier() or not value or any(c in value for c in " \"'$#"):
            raise ValueError(f"{VERSIONS_FILE}:{number}: expected KEY=value, got {line!r}")
        versions[key] = value
    return versions


def version(key: str) -> str:
    return pinned()[key]
