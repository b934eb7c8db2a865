"""Scanner analysis: split a file of many trading scanners into isolated, runnable ones.

Entry points: :func:`tapereader.core.scanning.analysis.analyse` (report and generated
sources), :func:`~tapereader.core.scanning.analysis.write_outputs`,
:func:`tapereader.core.scanning.proof.prove` (runtime proof in the sandbox) and
:func:`tapereader.core.scanning.scanner_events.analysis_events`. See docs/SCANNERS.md.
"""
