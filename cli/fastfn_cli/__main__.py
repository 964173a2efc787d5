"""`python3 -m fastfn_cli` and the zipapp's entry."""

import sys

from fastfn_cli.main import main

sys.exit(main())
