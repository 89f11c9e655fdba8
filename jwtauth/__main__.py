"""Allow `python -m jwtauth`."""

from jwtauth.cli import main

raise SystemExit(main())
