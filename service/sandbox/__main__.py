"""`python -m service.sandbox [--port P]`: run the Corti sandbox."""

import sys

from service.sandbox import run_sandbox

run_sandbox(sys.argv[1:])
