"""Studies: the paper's scenarios as one config, run resumably, then tabulated and reported.

``run_study`` expands a study YAML into cells and runs each through the single-run
pipeline; ``study_results`` gathers the finished cells into one tidy table;
:func:`lorasum.report.study_report` turns that table into an HTML page with figures.
"""
from lorasum.study.cells import Cell, expand, select_shard
from lorasum.study.results import study_results
from lorasum.study.runner import load_study, run_study
from lorasum.study.spec import StudySpec, load_study_spec, parse_study_spec


def study_report(study_dir, **kwargs):
    """See :func:`lorasum.report.study_report`."""
    from lorasum.report import study_report as _report

    return _report(study_dir, **kwargs)


__all__ = [
    "Cell", "StudySpec", "expand", "load_study", "load_study_spec", "parse_study_spec", "run_study",
    "select_shard", "study_report", "study_results",
]
