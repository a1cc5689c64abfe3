"""python -m gvcf.book: run the chapters, build checks (see gvcf.book.runner)."""
from .runner import main

raise SystemExit(main())
