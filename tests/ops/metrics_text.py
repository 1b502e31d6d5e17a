"""Reading /metrics in tests: the text format parsed by prometheus_client."""

from __future__ import annotations

import shutil
import subprocess

from prometheus_client.parser import text_string_to_metric_families


class Scrape:
    """One scrape: sample values by name and labels."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(text)}

    def value(self, name: str, **labels: str) -> float:
        """Sum of the samples called `name` whose labels include `labels`."""
        total = 0.0
        for family in self.families.values():
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    total += sample.value
        return total

    def label_names(self, family: str) -> set[str]:
        """Label names used by a family's samples (bucket `le` left out)."""
        names: set[str] = set()
        for sample in self.families[family].samples:
            names |= set(sample.labels) - {"le"}
        return names


def promtool_check(text: str) -> subprocess.CompletedProcess[str]:
    """`promtool check metrics` on `text` (Debian's prometheus package)."""
    binary = shutil.which("promtool")
    assert binary is not None, "promtool is missing: apt-get install prometheus"
    return subprocess.run(
        [binary, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
