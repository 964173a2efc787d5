"""fastfn_cli: the `fastfn` command (docs/CLI.md), one module per job.

client (talking to the gateway), exits (the exit-code scheme), body (request bodies, stdin),
invoke and call (calls, queued calls), listing (list, health), describe, logs, new, dev and
dev_output (the gateway under `fastfn dev` and its log), paths (where the gateway and the
templates are), and main (the command line). Python 3 standard library only; installed as one
zipapp (cli/meson.build), run from a source tree through cli/fastfn.
"""

# The project version of meson.build (tests/unit/cli/test_version.py checks they agree).
VERSION = "0.1.0"
PROG = "fastfn"
