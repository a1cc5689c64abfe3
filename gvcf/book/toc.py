"""The book's chapters in reading order: the one list, and where their sources, executed copies and run records
live. The runner runs them, the HTML check looks for their pages, and tests/book/test_project.py checks _toc.yml and
notebooks/ against it."""
from pathlib import Path

CHAPTERS = (
    "01_overview",
    "02_guided_fusion",
    "03_variance_corrected_fusion",
    "04_style_alignment",
    "05_syncdiffusion",
    "06_runtime",
)
# chapters whose page must show at least one table (paper Tables 1-4)
TABLE_CHAPTERS = ("02_guided_fusion", "03_variance_corrected_fusion", "05_syncdiffusion", "06_runtime")

NOTEBOOKS_DIR = Path("notebooks")            # the chapters' sources
CHAPTERS_DIR = Path("book") / "chapters"     # their executed copies (python -m gvcf.book run)
RECORD_SUFFIX = ".run.json"                  # each executed copy's run record beside it: hash, parameters, stages
STAGES_SUFFIX = ".stages.jsonl"             # the chapter kernel's stage log (gvcf.engine.stages), read after it ran
