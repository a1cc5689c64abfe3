"""The Jupyter Book: chapter setup, figures, the papermill runner and the built-HTML check. Imports gvcf.engine,
gvcf.eval and gvcf.paper."""
