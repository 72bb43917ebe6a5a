"""Expectations on sweeps: rules with conditions, checked per config (gdrun sweep and gdrun check)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "sweep_x2_which_lr_converges.yaml"


def test_the_sweep_config_passes_gdrun_check(gdrun, tmp_path):
    r = gdrun("check", str(CONFIG), "--runs-dir", str(tmp_path / "runs"), "--json", "--junit", str(tmp_path / "j.xml"))
    assert r.code == 0, r.out + r.err
    (config,) = json.loads(r.out)["configs"]
    assert config["outcome"] == "passed" and len(config["expectations"]) >= 38
    assert all(e["passed"] for e in config["expectations"])
    cases = ET.parse(tmp_path / "j.xml").getroot().iter("testcase")
    assert sum(1 for _ in cases) == len(config["expectations"])


def test_a_wrong_rule_fails_per_config(gdrun, tmp_path):
    text = CONFIG.read_text().replace("status: diverged", "status: converged")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    r = gdrun("check", str(bad), "--runs-dir", str(tmp_path / "runs"), "--json")
    assert r.code == 1
    failed = [e for e in json.loads(r.out)["configs"][0]["expectations"] if not e["passed"]]
    assert failed and all("lr=" in e["expectation"] for e in failed)
    assert len(failed) == sum(1 for v in __import__("numpy").linspace(0.05, 2.0, 40) if v > 1.0)
    s = gdrun("sweep", str(bad), "--runs-dir", str(tmp_path / "runs2"), "-q")
    assert s.code == 1 and "expectation(s) failed" in s.err
