"""`python -m cnnlab`: the command line of `cnnlab.suite.cli`."""

import sys

from cnnlab.suite.cli import main

sys.exit(main())
