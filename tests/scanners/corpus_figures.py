"""Print the corpus figures table of docs/SCANNERS.md, measured afresh.

Run from the repository root:  .venv/bin/python -m tests.scanners.corpus_figures
"""

from tapereader.core.scanning.analysis import analyse
from tapereader.core.scanning.parse import source_from_bytes
from tapereader.core.scanning.proof import prove

from .scanner_corpus import corpus_files, truth


def main() -> None:
    """Analyse, re-analyse the outputs and prove every corpus file; print one row each."""
    expected = truth()
    print(
        "| file | lines | scanners found / expected | boundaries right | parameters found "
        "| needs review | contamination in original | left in isolated files "
        "| static isolation | runtime proof | findings crit/warn/info | secrets |"
    )
    print("|---" * 12 + "|")
    for path in corpus_files():
        a = analyse(path)
        r, want = a.report, expected[path.name]["scanner"]
        got = r.scanners
        bounds = sum(
            (w["name"], w["kind"], w["start"], w["end"])
            == (g.name, g.kind, g.start_line, g.end_line)
            for w, g in zip(want, got, strict=False)
        )
        n_params = sum(len(w["parameters"]) for w in want)
        found = sum(
            any(p.name == k and p.value == v for p in g.parameters)
            for w in want
            for g in got
            if g.name == w["name"]
            for k, v in w["parameters"].items()
        )
        left = sum(
            len(
                analyse(
                    source_from_bytes(s.output_file, a.sources[s.name].encode()),
                    second_opinion=False,
                ).report.contamination
            )
            for s in got
        )
        proofs = prove(a, path.read_text())
        proven = sum(p.status == "proven" for p in proofs)
        skipped = sum(p.status == "skipped" for p in proofs)
        sev = [sum(f.severity == s for f in r.findings) for s in ("critical", "warning", "info")]
        print(
            f"| {path.name} | {r.line_count} | {len(got)}/{len(want)} | {bounds}/{len(want)} "
            f"| {found}/{n_params} | {sum(s.needs_review for s in got)} | {len(r.contamination)} "
            f"| {left} | {sum(s.isolated for s in got)}/{len(got)} "
            f"| {proven} proven, {skipped} skipped | {sev[0]}/{sev[1]}/{sev[2]} "
            f"| {', '.join(r.secrets) or '-'} |"
        )


if __name__ == "__main__":
    main()
