"""The torch-free catalog (CLI, reports, app) names exactly the attacks and defences the engine has."""

from __future__ import annotations

from engine.attacks import ATTACK_INFO, ATTACKS
from engine.attacks.natural import NATURAL
from engine.cli.parser import ATTACK_NAMES, DEFENCE_NAMES
from engine.core import catalog


def test_catalog_matches_the_registries():
    assert list(catalog.ATTACK_LABELS) == list(ATTACKS) == list(ATTACK_NAMES)
    assert set(catalog.WHITE_BOX) == {n for n, i in ATTACK_INFO.items() if i.kind == "white-box"}
    assert set(catalog.BASELINES) == {n for n, i in ATTACK_INFO.items() if i.kind == "baseline"}
    assert set(catalog.ITERATIVE) == {n for n, i in ATTACK_INFO.items() if i.iterative}
    assert set(catalog.NATURAL_LABELS) == set(NATURAL)
    assert DEFENCE_NAMES == catalog.DEFENCES and set(catalog.DEFENCE_LABELS) == set(catalog.DEFENCES)
