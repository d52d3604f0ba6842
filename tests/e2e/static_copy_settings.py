"""The test settings with the static files of another folder (TEST_STATIC_DIR): a new release's."""

import os

from inventory_site.settings.test import *  # noqa: F403

STATICFILES_DIRS = [os.environ["TEST_STATIC_DIR"]]
