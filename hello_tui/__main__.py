"""``python -m hello_tui`` is the same as ``hello-tui``."""

import sys

from hello_tui.cli.main import main

sys.exit(main())
