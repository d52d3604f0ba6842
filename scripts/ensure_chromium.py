"""Install Debian's Chromium for the browser tests when it is missing and we may (root with apt-get).

Playwright's own browser download does not work on our machines; the tests drive /usr/bin/chromium.
Prints what it did; never fails the build (the browser tests skip, or fail under CI, without it).
"""

import os
import shutil
import subprocess
import sys

CHROMIUM = "/usr/bin/chromium"


def main() -> int:
    if os.path.exists(CHROMIUM):
        return 0
    if os.environ.get("SKIP_BROWSER_INSTALL") or not shutil.which("apt-get") or os.geteuid() != 0:
        print("Chromium not found at /usr/bin/chromium: browser tests will be skipped.", file=sys.stderr)
        return 0
    print("Installing Debian's chromium for the browser tests...", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], env=env, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
