from __future__ import annotations

import sys

from pytest_chaos.cli import main

sys.exit(main())
