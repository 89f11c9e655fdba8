"""Build the `jwtauth-verify` wheel: the offline verifier alone, for resource servers.

One repository, two distributions. `jwtauth-server` (pyproject.toml at the root) is the whole
server, the verifier included. `jwtauth-verify` holds only `jwtauth/verify` (the verifier never
imports the server) and needs only PyJWT and cryptography; Falcon is its `falcon` extra, for
the framework adapters, which are imported on first use. It has no `jwtauth/__init__.py`, so
`jwtauth` is a namespace package there. Install one or the other, not both: the server
already contains the verifier.

    python scripts/build_verify.py dist/        # -> dist/jwtauth_verify-<version>-py3-none-any.whl

It builds with the current environment's setuptools (no isolation, so no download): `make dev`
installs it; `make dist` builds both distributions and runs `twine check` on them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERIFY = ROOT / "jwtauth" / "verify"

PYPROJECT = """\
[build-system]
requires = ["setuptools>=77,<90"]
build-backend = "setuptools.build_meta"

[project]
name = "jwtauth-verify"
version = "{version}"
description = "Verify jwtauth access tokens (RFC 9068 JWTs, DPoP) offline in a resource server"
readme = "README.md"
requires-python = ">=3.11"
license = "MIT"
license-files = ["LICENSE"]
classifiers = [
    "Programming Language :: Python :: 3 :: Only",
    "Topic :: Security",
    "Typing :: Typed",
]
dependencies = ["PyJWT[crypto]>=2.13,<3", "cryptography>=44.0.1"]

[project.optional-dependencies]
falcon = ["falcon>=4.0,<5"]

[tool.setuptools]
packages = ["jwtauth.verify"]

[tool.setuptools.package-data]
"jwtauth.verify" = ["py.typed"]
"""

README = """\
# jwtauth-verify

The offline verifier of jwtauth access tokens, alone: `pip install jwtauth-verify` (add
`[falcon]` for `BearerAuth`, `DPoPAuth` and the WSGI/ASGI wrappers). See the jwtauth README,
"Verifying tokens in a resource server".
"""


def version() -> str:
    """Return the version from jwtauth/__init__.py, its one place."""
    text = (ROOT / "jwtauth" / "__init__.py").read_text(encoding="utf-8")
    found = re.search(r'^__version__ = "([^"]+)"$', text, re.MULTILINE)
    if found is None:
        raise SystemExit("jwtauth/__init__.py has no __version__")
    return found.group(1)


def build(out: Path) -> Path:
    """Stage the verifier with its own metadata, build its wheel into `out`, return the wheel."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as staging:
        stage = Path(staging)
        shutil.copytree(VERIFY, stage / "jwtauth" / "verify", ignore=shutil.ignore_patterns("__pycache__"))
        (stage / "pyproject.toml").write_text(PYPROJECT.format(version=version()), encoding="utf-8")
        (stage / "README.md").write_text(README, encoding="utf-8")
        shutil.copy(ROOT / "LICENSE", stage / "LICENSE")
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
             "--wheel-dir", str(out), str(stage)],
            check=True,
        )  # fmt: skip
    (wheel,) = out.glob(f"jwtauth_verify-{version()}-*.whl")
    return wheel


if __name__ == "__main__":
    print(build(Path(sys.argv[1] if len(sys.argv) > 1 else "dist")))
