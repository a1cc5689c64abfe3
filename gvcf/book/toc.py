"""The book's chapters in reading order: the one list. The runner runs them, the HTML check looks for their pages,
and tests/book/test_project.py checks _toc.yml and notebooks/ against it."""

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
