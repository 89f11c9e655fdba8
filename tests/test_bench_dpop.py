"""bench/dpop.py: the proofs make bench sends are each valid once for the token endpoint."""

from __future__ import annotations

import time
from pathlib import Path

from bench.dpop import write_proofs
from jwtauth.verify.dpop import check_proof

HTU = "http://127.0.0.1:8000/api/v1/tokens"


def test_proofs_are_valid_unique_and_of_one_key(tmp_path: Path) -> None:
    lines = write_proofs(HTU, 20, tmp_path / "proofs.txt").read_text().splitlines()
    checked = [check_proof(line, htm="POST", htu=HTU, now=time.time()) for line in lines]
    assert len(lines) == 20 and len({p.jti for p in checked}) == 20
    assert len({p.jkt for p in checked}) == 1
