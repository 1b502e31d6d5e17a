"""`python -m corti_sandbox [--port P]`: run the Corti sandbox."""

import sys

from corti_sandbox import run_sandbox

run_sandbox(sys.argv[1:])
