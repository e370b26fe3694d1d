"""Reports: a study's results as figures (:mod:`.plots`), matched LoRA-vs-full tests
(:mod:`.compare`), generated findings (:mod:`.findings`) and a self-contained HTML page
with a Markdown summary (:mod:`.html`)."""
from lorasum.report.build import study_report

__all__ = ["study_report"]
