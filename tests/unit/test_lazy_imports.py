from __future__ import annotations

import subprocess
import sys


def test_importing_the_plugin_loads_no_kubernetes_or_http_client() -> None:
    code = (
        "import sys, pytest_chaos.plugin; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'kubernetes', 'httpx', 'cryptography', 'urllib3', 'yaml'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
