"""Allow `python -m jwtauth`."""

from jwtauth.cli.main import main

raise SystemExit(main())
