"""`python -m arborec` runs the command-line tool."""

from arborec.cli import main

raise SystemExit(main())
