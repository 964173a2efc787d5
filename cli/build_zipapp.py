#!/usr/bin/env python3
"""Builds the installed `fastfn`: the package fastfn_cli/ as one zipapp (Python's zipapp module, as
`python3 -m zipapp` does) with `#!/usr/bin/env python3`. Only the package's .py files go in (no
__pycache__, nor the launcher and the completion beside it).

  build_zipapp.py CLI_DIR OUTPUT
"""

import os
import sys
import zipapp
from pathlib import Path


def wanted(path: Path) -> bool:
    return path.parts[0] == "fastfn_cli" and (path.suffix == ".py" or path == Path("fastfn_cli"))


def main() -> int:
    source, output = Path(sys.argv[1]), Path(sys.argv[2])
    zipapp.create_archive(source, output, interpreter="/usr/bin/env python3",
                          main="fastfn_cli.main:run", filter=wanted)
    os.chmod(output, 0o755)  # as installed (zipapp makes it executable for its owner only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
